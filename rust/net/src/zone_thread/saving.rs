//! A zone thread's side of persistence: loading characters at login, write-behind saving,
//! and committing item transfers, against the server's [`CharacterStore`].
//!
//! Nothing here waits: the store answers on oneshot channels polled every tick, and a full
//! store hands batches back.
//!
//! * **Login.** After the authority accepts a token, the account is registered (an older
//!   connection of the account is kicked first, so its logout save is offered before this
//!   load is asked for when both are in this zone) and [`CharacterStore::load`] is called;
//!   the client stays `LoginPending`. `Ok(record)` spawns the character from it
//!   ([`mmo_core::zone::Zone::accept_login_record`]); a refusal closes the connection with
//!   its reason; a dropped answer or a record the content cannot load closes it with
//!   [`DisconnectReason::ServiceUnavailable`]. A connection lost while loading is forgotten.
//! * **Save state.** Per logged-in connection: the loaded record (ids, name, level,
//!   experience), the last record offered, and the version a refused snapshot was given.
//!   It moves with the player at a handoff.
//! * **Periodic.** Every `save_interval` (on the shared schedule, staggered by zone id),
//!   every character is snapshotted; those that differ from the last record offered
//!   (version ignored) are offered as one `Periodic` batch, each with the next version. A
//!   refused batch (backlog full) is counted; its characters stay dirty and keep the
//!   version already given, and are offered again at the next interval.
//! * **Logout** (any close of a logged-in connection): the character is offered as `Now`
//!   if it changed. A refused logout batch is queued here and offered again every interval
//!   and at shutdown: nothing is dropped while the zone runs. A record still queued when
//!   its character logs in again in this zone replaces the loaded record (it is newer).
//! * **Shutdown** (end of the zone's `run`): players already handed to this zone are taken
//!   in, then every character is closed, so each is offered as a logout; then the queue is
//!   offered until the store takes it or a deadline of [`SHUTDOWN_RETRY`] passes (what is
//!   left then is logged as an error with its count). The server's store takes `Now`
//!   batches past its backlog bound, so with it the queue stays empty; only a closed or
//!   refusing store leaves something there.
//! * **Transfers.** A `Give` the zone applied is offered as ONE `Now` batch of both
//!   characters with a `committed` channel; the zone answers the giver when the commit
//!   arrives. A refused batch is answered at once with an error (the items stay moved; both
//!   stay dirty and are saved by the next periodic batch).
//! * **Versions.** Every zone of the server records the highest version it offered per
//!   character ([`SaveVersions`]); a new session continues above it, so a session that
//!   loaded before an older session's final save (a duplicate login from another zone)
//!   is not refused as stale forever.
//! * **Duplicate logins.** A login whose account is still playing is loaded only after the
//!   older session was closed and its logout save offered: at once when it is in this
//!   zone; when it is in another zone, that zone answers the kick after its logout save
//!   (a kick nobody finds is answered by being dropped), and the load starts then, or
//!   after [`KICK_WAIT`] at the latest. The saver's `load` returns a pending record newer
//!   than the stored one, so the new session starts from the older session's last state.
//!   With fleet-wide presence (a relayed session in a fleet, see `presence`) the login
//!   first claims the account's key, which waits until the older session, in any zone
//!   process, was closed and its logout save committed; the load starts after that.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mmo_core::control::DisconnectReason;
use mmo_core::persist::CharacterRecord;
use mmo_core::zone::{ConnectionId, PendingTransfer};
use tokio::sync::oneshot;
use tokio::sync::oneshot::error::TryRecvError;

use crate::auth::{LoginGrant, LoginRefusal};
use crate::metrics as names;
use crate::persist::{CharacterStore, SaveBatch, SaveUrgency};

use super::{ZoneLoop, lock};

/// How long a zone keeps offering refused batches at shutdown.
pub(crate) const SHUTDOWN_RETRY: Duration = Duration::from_secs(5);

/// Character id -> highest version offered by any zone (shared by a server's zones).
pub(crate) type SaveVersions = Arc<Mutex<BTreeMap<u64, u64>>>;

/// One logged-in character's save state; moves with the player at a handoff (as postcard
/// bytes to another process: [`SaveState::encode`]).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SaveState {
    /// The record loaded at login: ids, name, level, experience come from it.
    base: CharacterRecord,
    /// The last record the store accepted from this session (the loaded one at first).
    last_offered: CharacterRecord,
    /// The version given to a snapshot the store refused (offered again with it).
    unsent_version: Option<u64>,
}

impl SaveState {
    /// The database id of the character.
    pub(crate) fn character_id(&self) -> u64 {
        self.base.character_id
    }

    /// The state as bytes for a handoff to another process (postcard; the peer message
    /// carries the format version).
    pub(crate) fn encode(&self) -> Result<Vec<u8>, String> {
        postcard::to_allocvec(self).map_err(|e| format!("save state not encoded: {e}"))
    }

    /// A state from [`SaveState::encode`]'s bytes.
    pub(crate) fn decode(bytes: &[u8]) -> Result<SaveState, String> {
        postcard::from_bytes(bytes).map_err(|e| format!("save state does not decode: {e}"))
    }
}

/// A zone thread's persistence state.
pub(super) struct Saving {
    store: Option<Arc<dyn CharacterStore>>,
    interval: Duration,
    next_save: Instant,
    /// Save state of every logged-in connection here (with a store).
    states: BTreeMap<ConnectionId, SaveState>,
    /// Logins waiting for their character.
    loading: Vec<Loading>,
    /// Logout batches the store refused, oldest first.
    queued: Vec<QueuedBatch>,
    /// Transfers waiting for the store's commit.
    commits: Vec<(PendingTransfer, oneshot::Receiver<Result<(), String>>)>,
}

/// A logout batch the store refused, offered again later with its commit channel (the
/// account's presence is released only when that answers).
struct QueuedBatch {
    records: Vec<CharacterRecord>,
    committed: Option<oneshot::Sender<Result<(), String>>>,
}

/// A login waiting for the store.
struct Loading {
    id: ConnectionId,
    grant: LoginGrant,
    /// The store's answer; `None` while the older session of the account (in another
    /// zone) is being closed.
    answer: Option<oneshot::Receiver<Result<CharacterRecord, LoginRefusal>>>,
    /// Answered or closed once the older session's zone closed it and offered its logout
    /// save; the load starts then, or at the deadline.
    kicked: Option<(oneshot::Receiver<()>, Instant)>,
    /// The claim of the account's fleet-wide presence (a relayed session in a fleet, see
    /// `presence`), until answered; the load waits for it.
    claim: Option<PendingClaim>,
}

/// A presence claim not answered yet.
struct PendingClaim {
    answer: oneshot::Receiver<Result<(), String>>,
    deadline: Instant,
    session: crate::relay::SessionRef,
}

/// Longest a login waits for its account's older session (in another zone) to be closed
/// and saved before its character is loaded anyway.
const KICK_WAIT: Duration = Duration::from_secs(3);

/// Longest a login waits for its fleet-wide presence claim (which itself gives up within
/// about 5.5 s) before it is refused.
const CLAIM_DEADLINE: Duration = Duration::from_secs(8);

impl Saving {
    /// The state of zone `index` of `zone_count` (its periodic saves are staggered).
    pub(super) fn new(shared: &super::Shared, index: usize, zone_count: usize) -> Self {
        let interval = shared.save_interval.max(Duration::from_millis(1));
        let stagger = interval.mul_f64(index as f64 / zone_count.max(1) as f64);
        Saving {
            store: shared.store.clone(),
            interval,
            next_save: shared.start + interval + stagger,
            states: BTreeMap::new(),
            loading: Vec::new(),
            queued: Vec::new(),
            commits: Vec::new(),
        }
    }

    /// Whether logins go through the store.
    pub(super) fn has_store(&self) -> bool {
        self.store.is_some()
    }

    /// The database id of `id`'s character, once loaded (with a store).
    pub(super) fn character_id(&self, id: ConnectionId) -> Option<u64> {
        self.states.get(&id).map(|state| state.base.character_id)
    }

    /// Takes a player's save state for a handoff.
    pub(super) fn take(&mut self, id: ConnectionId) -> Option<SaveState> {
        self.states.remove(&id)
    }

    /// Puts a handed-over player's save state here.
    pub(super) fn put(&mut self, id: ConnectionId, state: SaveState) {
        self.states.insert(id, state);
    }
}

/// `a` and `b` equal but for their versions.
fn same_but_version(a: &CharacterRecord, b: &CharacterRecord) -> bool {
    let mut b = b.clone();
    b.version = a.version;
    *a == b
}

fn urgency_label(urgency: SaveUrgency) -> &'static str {
    match urgency {
        SaveUrgency::Periodic => "periodic",
        SaveUrgency::Now => "now",
    }
}

impl ZoneLoop {
    /// Starts a login whose token was accepted, with a store or a fleet-wide presence to
    /// wait for. The account is registered now, so an older session here is closed (and
    /// saved) first; the account's fleet presence is claimed (which kicks an older session
    /// in another process and waits for its save); then the character is loaded (or, without
    /// a store, spawned from the zone's defaults).
    pub(super) fn start_load(&mut self, id: ConnectionId, grant: LoginGrant) {
        let kicked = self.register_account(id, &grant.account);
        // The older session's logout save (same zone) is offered before the load.
        self.handle_events();
        let now = Instant::now();
        let claim = self
            .start_claim(id, &grant.account)
            .map(|(answer, session)| PendingClaim {
                answer,
                deadline: now + CLAIM_DEADLINE,
                session,
            });
        self.saving.loading.push(Loading {
            id,
            grant,
            answer: None,
            // In another zone: load once that zone has offered its logout save.
            kicked: kicked.map(|done| (done, now + KICK_WAIT)),
            claim,
        });
        self.poll_loads();
    }

    /// Moves every login waiting for its claim, its older session or its character on,
    /// and handles the loads that finished (every tick).
    pub(super) fn poll_loads(&mut self) {
        let now = Instant::now();
        let store = self.saving.store.clone();
        let mut i = 0;
        while i < self.saving.loading.len() {
            let loading = &mut self.saving.loading[i];
            if let Some(claim) = &mut loading.claim {
                let outcome = match claim.answer.try_recv() {
                    Err(TryRecvError::Empty) if now < claim.deadline => {
                        i += 1;
                        continue;
                    }
                    Err(TryRecvError::Empty) => Err(
                        "cannot check where else this account is logged in (no answer in time)"
                            .to_owned(),
                    ),
                    Ok(outcome) => outcome,
                    Err(TryRecvError::Closed) => Err(
                        "cannot check where else this account is logged in (stopping)".to_owned(),
                    ),
                };
                if let Some(claim) = loading.claim.take()
                    && outcome.is_err()
                    && let Some(presence) = &self.shared.presence
                {
                    // Past the deadline: an answer arriving now must not leave the key held.
                    presence.abandon(claim.answer, &loading.grant.account, claim.session);
                }
                let (id, account) = (loading.id, loading.grant.account.clone());
                if let Err(message) = outcome {
                    let Loading { id, grant, .. } = self.saving.loading.swap_remove(i);
                    tracing::warn!(account = %grant.account, connection = id.0, error = %message, "login refused: account presence not claimed");
                    self.refuse_login(
                        id,
                        &grant,
                        LoginRefusal {
                            reason: DisconnectReason::ServiceUnavailable,
                            message,
                        },
                    );
                    continue;
                }
                self.hold_claim(id, &account);
                continue;
            }
            if let Some((done, deadline)) = &mut loading.kicked {
                let closed = match done.try_recv() {
                    Err(TryRecvError::Empty) => false,
                    Ok(()) | Err(TryRecvError::Closed) => true,
                };
                if !closed && now < *deadline {
                    i += 1;
                    continue;
                }
                if !closed {
                    tracing::warn!(account = %loading.grant.account, connection = loading.id.0, "the older session was not closed in time: loading the character anyway");
                }
                loading.kicked = None;
            }
            if loading.answer.is_none() {
                let Some(store) = &store else {
                    // No store (a fleet session's presence was what it waited for).
                    let Loading { id, grant, .. } = self.saving.loading.swap_remove(i);
                    self.accept_without_store(id, &grant.account);
                    continue;
                };
                loading.answer = Some(store.load(&loading.grant));
            }
            let Some(answer) = loading.answer.as_mut() else {
                i += 1;
                continue;
            };
            let outcome = match answer.try_recv() {
                Err(TryRecvError::Empty) => {
                    i += 1;
                    continue;
                }
                Ok(o) => Some(o),
                Err(TryRecvError::Closed) => None,
            };
            let Loading { id, grant, .. } = self.saving.loading.swap_remove(i);
            self.finish_load(id, grant, outcome);
        }
    }

    /// Spawns a new character from the zone's defaults for a login without a store.
    fn accept_without_store(&mut self, id: ConnectionId, account: &str) {
        if self.zone.accept_login(id).is_none() {
            // The client left meanwhile.
            self.unregister(id, account);
            return;
        }
        self.logged_in(id, account, account);
        self.flush(id);
    }

    /// Closes a login with `refusal` and counts it.
    fn refuse_login(&mut self, id: ConnectionId, grant: &LoginGrant, refusal: LoginRefusal) {
        metrics::counter!(names::LOGINS_TOTAL, "outcome" => refusal.reason.as_str()).increment(1);
        tracing::info!(account = %grant.account, connection = id.0, reason = refusal.reason.as_str(), message = %refusal.message, "login refused");
        self.unregister(id, &grant.account);
        self.zone.close(id, refusal.reason, &refusal.message);
        self.flush(id);
    }

    fn finish_load(
        &mut self,
        id: ConnectionId,
        grant: LoginGrant,
        outcome: Option<Result<CharacterRecord, LoginRefusal>>,
    ) {
        let refusal = match outcome {
            Some(Ok(mut record)) => {
                // A logout save of this character still queued here is newer.
                if let Some(newer) = self
                    .saving
                    .queued
                    .iter()
                    .flat_map(|batch| &batch.records)
                    .filter(|r| r.character_id == record.character_id)
                    .max_by_key(|r| r.version)
                    .filter(|r| r.version > record.version)
                {
                    record = newer.clone();
                }
                let floor = lock(&self.shared.save_versions)
                    .get(&record.character_id)
                    .copied()
                    .unwrap_or(0);
                match self.zone.accept_login_record(id, &record) {
                    Ok(Some(_)) => {
                        metrics::counter!(names::CHARACTER_LOADS_TOTAL, "outcome" => "loaded")
                            .increment(1);
                        let mut last_offered = record.clone();
                        last_offered.version = last_offered.version.max(floor);
                        self.saving.states.insert(
                            id,
                            SaveState {
                                base: record,
                                last_offered,
                                unsent_version: None,
                            },
                        );
                        let name = self
                            .saving
                            .states
                            .get(&id)
                            .map(|state| state.base.name.clone())
                            .unwrap_or_default();
                        self.logged_in(id, &grant.account, &name);
                        self.flush(id);
                        return;
                    }
                    Ok(None) => {
                        // The client left while its character loaded.
                        self.unregister(id, &grant.account);
                        return;
                    }
                    Err(e) => {
                        tracing::error!(account = %grant.account, connection = id.0, error = %e, "stored character cannot be loaded");
                        metrics::counter!(names::CHARACTER_LOADS_TOTAL, "outcome" => "bad_record")
                            .increment(1);
                        LoginRefusal {
                            reason: DisconnectReason::ServiceUnavailable,
                            message: format!("your character cannot be loaded: {e}"),
                        }
                    }
                }
            }
            Some(Err(refusal)) => {
                metrics::counter!(names::CHARACTER_LOADS_TOTAL, "outcome" => refusal.reason.as_str())
                    .increment(1);
                refusal
            }
            None => {
                metrics::counter!(names::CHARACTER_LOADS_TOTAL, "outcome" => "unavailable")
                    .increment(1);
                LoginRefusal {
                    reason: DisconnectReason::ServiceUnavailable,
                    message: "the character store is unavailable".to_owned(),
                }
            }
        };
        self.refuse_login(id, &grant, refusal);
    }

    /// Forgets a login still loading on `id` (the connection is gone); a presence claim it
    /// was waiting for is abandoned (released if it succeeded meanwhile).
    pub(super) fn forget_load(&mut self, id: ConnectionId) {
        if let Some(at) = self.saving.loading.iter().position(|l| l.id == id) {
            let loading = self.saving.loading.swap_remove(at);
            if let (Some(claim), Some(presence)) = (loading.claim, &self.shared.presence) {
                presence.abandon(claim.answer, &loading.grant.account, claim.session);
            }
            self.unregister(id, &loading.grant.account);
        }
    }

    /// A snapshot of `id`'s character if it changed since the last record offered, with
    /// the version it is offered with.
    fn changed_record(&self, id: ConnectionId) -> Option<CharacterRecord> {
        let state = self.saving.states.get(&id)?;
        let mut record = self.zone.character_record(id, &state.base)?;
        record.version = state.last_offered.version;
        if same_but_version(&record, &state.last_offered) {
            return None;
        }
        record.version = state
            .unsent_version
            .unwrap_or(state.last_offered.version + 1);
        Some(record)
    }

    /// Offers `records` as one batch; `Err` hands them back (backlog full).
    fn offer(
        &self,
        records: Vec<CharacterRecord>,
        urgency: SaveUrgency,
        committed: Option<oneshot::Sender<Result<(), String>>>,
    ) -> Result<(), SaveBatch> {
        let Some(store) = &self.saving.store else {
            return Ok(());
        };
        let count = records.len() as u64;
        let label = urgency_label(urgency);
        metrics::counter!(names::CHARACTER_RECORDS_OFFERED_TOTAL, "urgency" => label)
            .increment(count);
        {
            let mut versions = lock(&self.shared.save_versions);
            for r in &records {
                let v = versions.entry(r.character_id).or_insert(0);
                *v = (*v).max(r.version);
            }
        }
        store
            .save(SaveBatch {
                records,
                urgency,
                committed,
            })
            .inspect_err(|batch| {
                metrics::counter!(names::CHARACTER_SAVE_BATCHES_REFUSED_TOTAL, "urgency" => label)
                    .increment(1);
                tracing::error!(
                    zone = %self.metrics.zone_label,
                    records = batch.records.len(),
                    urgency = label,
                    "character store backlog full: batch refused, offered again later"
                );
            })
    }

    /// Records the outcome of offering `records` of connections still here.
    fn mark(&mut self, records: &[CharacterRecord], accepted: bool, ids: &[ConnectionId]) {
        for (record, id) in records.iter().zip(ids) {
            if let Some(state) = self.saving.states.get_mut(id) {
                if accepted {
                    state.last_offered = record.clone();
                    state.unsent_version = None;
                } else {
                    state.unsent_version = Some(record.version);
                }
            }
        }
    }

    /// The periodic save, when due (called every tick).
    pub(super) fn save_if_due(&mut self) {
        if self.saving.store.is_none() || Instant::now() < self.saving.next_save {
            return;
        }
        while self.saving.next_save <= Instant::now() {
            self.saving.next_save += self.saving.interval;
        }
        self.save_dirty(SaveUrgency::Periodic);
        self.offer_queued();
    }

    /// Offers every changed character as one batch.
    pub(super) fn save_dirty(&mut self, urgency: SaveUrgency) {
        let ids: Vec<ConnectionId> = self.saving.states.keys().copied().collect();
        let (ids, records): (Vec<_>, Vec<_>) = ids
            .into_iter()
            .filter_map(|id| self.changed_record(id).map(|r| (id, r)))
            .unzip();
        if records.is_empty() {
            return;
        }
        let accepted = match self.offer(records.clone(), urgency, None) {
            Ok(()) => true,
            Err(_) => false,
        };
        self.mark(&records, accepted, &ids);
    }

    /// Offers the refused logout batches again, oldest first, until one is refused.
    fn offer_queued(&mut self) {
        while !self.saving.queued.is_empty() {
            let QueuedBatch { records, committed } = self.saving.queued.remove(0);
            if let Err(batch) = self.offer(records, SaveUrgency::Now, committed) {
                self.saving.queued.insert(
                    0,
                    QueuedBatch {
                        records: batch.records,
                        committed: batch.committed,
                    },
                );
                return;
            }
        }
    }

    /// The logout save of `id` (before its character leaves the zone).
    ///
    /// With `barrier` the record is offered even when unchanged (with the next version)
    /// and with a `committed` channel, returned: its answer comes once every save of the
    /// character offered so far is written (`None`: no save state here). A batch the store
    /// hands back is queued with its channel and offered again later: the answer waits
    /// until the store has taken and written it.
    pub(super) fn save_leaving(
        &mut self,
        id: ConnectionId,
        barrier: bool,
    ) -> Option<oneshot::Receiver<Result<(), String>>> {
        let mut record = self.changed_record(id);
        if barrier && record.is_none() {
            let state = self.saving.states.get(&id)?;
            record = self.zone.character_record(id, &state.base).map(|mut r| {
                r.version = state.last_offered.version + 1;
                r
            });
        }
        self.saving.states.remove(&id);
        let record = record?;
        let (committed, answer) = if barrier {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        if let Err(batch) = self.offer(vec![record], SaveUrgency::Now, committed) {
            self.saving.queued.push(QueuedBatch {
                records: batch.records,
                committed: batch.committed,
            });
        }
        answer
    }

    /// Offers each transfer the zone applied as one committed batch of both characters.
    pub(super) fn commit_transfers(&mut self) {
        for transfer in self.zone.drain_transfers() {
            let ids = [transfer.giver, transfer.receiver];
            let records: Vec<CharacterRecord> = ids
                .iter()
                .filter_map(|&id| {
                    let state = self.saving.states.get(&id)?;
                    // Offered even when unchanged since the last offer (a transfer always
                    // changes both; this keeps the batch whole).
                    self.changed_record(id).or_else(|| {
                        let mut r = self.zone.character_record(id, &state.base)?;
                        r.version = state.last_offered.version + 1;
                        Some(r)
                    })
                })
                .collect();
            if records.len() != 2 {
                tracing::warn!(
                    giver = transfer.giver.0,
                    receiver = transfer.receiver.0,
                    "transfer between characters without save state: answered without a commit"
                );
                self.zone.finish_transfer(&transfer, Ok(()));
                continue;
            }
            let (tx, rx) = oneshot::channel();
            match self.offer(records.clone(), SaveUrgency::Now, Some(tx)) {
                Ok(()) => {
                    self.mark(&records, true, &ids);
                    self.saving.commits.push((transfer, rx));
                }
                Err(_) => {
                    self.mark(&records, false, &ids);
                    self.zone.finish_transfer(
                        &transfer,
                        Err("the character store is busy (backlog full)".to_owned()),
                    );
                }
            }
        }
    }

    /// Answers the transfers whose commit arrived (every tick).
    pub(super) fn poll_commits(&mut self) {
        let mut i = 0;
        while i < self.saving.commits.len() {
            let outcome = match self.saving.commits[i].1.try_recv() {
                Err(TryRecvError::Empty) => {
                    i += 1;
                    continue;
                }
                Ok(o) => o,
                Err(TryRecvError::Closed) => {
                    Err("the character store dropped the transaction".to_owned())
                }
            };
            let (transfer, _) = self.saving.commits.swap_remove(i);
            self.zone.finish_transfer(&transfer, outcome);
            for id in [transfer.giver, transfer.receiver] {
                self.flush(id);
            }
        }
    }

    /// At shutdown, after every connection was closed (and offered as a logout): offers
    /// the queued batches until the store takes them or [`SHUTDOWN_RETRY`] passes.
    pub(super) async fn save_at_shutdown(&mut self) {
        if self.saving.store.is_none() {
            return;
        }
        // Characters of connections not retired (none normally).
        let ids: Vec<ConnectionId> = self.saving.states.keys().copied().collect();
        for id in ids {
            self.save_leaving(id, false);
        }
        let deadline = Instant::now() + SHUTDOWN_RETRY;
        loop {
            self.offer_queued();
            if self.saving.queued.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                let records: usize = self.saving.queued.iter().map(|b| b.records.len()).sum();
                tracing::error!(zone = %self.metrics.zone_label, records, "character store still full at shutdown: these saves are lost");
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
