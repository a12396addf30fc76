//! A zone thread's side of fleet-wide account presence (`crate::relay`'s `presence`,
//! `RELAY_FORMAT.md` section 6), for the relayed sessions of a zone process with a
//! directory.
//!
//! * **Login.** After the authority accepted the token, the account's key is claimed for
//!   the session (`saving`'s login path waits for the claim before loading the character);
//!   a claim that fails refuses the login with `service_unavailable`.
//! * **Claims here.** Every session here that claimed its key, or arrived holding it from
//!   another zone or process, is in [`Presence::claims`]; a claim leaves with its player at
//!   a handoff.
//! * **Release.** When such a session ends (any reason), its logout save is offered with a
//!   `committed` channel even when nothing changed (a barrier: the answer comes once every
//!   earlier save of the character is written too), the key is marked closing (a new login
//!   waits for it instead of taking it over), and the key is released when that answer
//!   comes (whatever it says). Without a save state (no store) it is released at
//!   once. A new login of the account, in any process, therefore loads the character only
//!   after this session's last save is in the database.
//! * **Shutdown.** The zone waits for its releases' commits up to the save retry deadline;
//!   keys still marked closing then expire after 30 s (logins of those accounts are
//!   refused until then: their last saves were not written).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mmo_core::zone::ConnectionId;
use tokio::sync::oneshot;
use tokio::sync::oneshot::error::TryRecvError;

use super::ZoneLoop;
use crate::relay::SessionRef;

/// An account's key claimed for a session.
#[derive(Clone, Debug)]
pub(super) struct PresenceClaim {
    pub(super) account: String,
    pub(super) session: SessionRef,
}

/// The claims of the sessions in this zone and the releases waiting for a commit.
#[derive(Default)]
pub(super) struct Presence {
    claims: BTreeMap<ConnectionId, PresenceClaim>,
    releasing: Vec<Releasing>,
}

/// A release waiting for its session's logout save to commit.
struct Releasing {
    claim: PresenceClaim,
    committed: oneshot::Receiver<Result<(), String>>,
}

impl ZoneLoop {
    /// `id`'s session in the fleet, when account presence applies to it.
    pub(super) fn presence_session(&self, id: ConnectionId) -> Option<SessionRef> {
        self.shared.presence.as_ref()?;
        self.conns.get(&id)?.session
    }

    /// Starts claiming `account`'s key for `id`: the answer's receiver and the session
    /// (`None`: presence does not apply).
    pub(super) fn start_claim(
        &self,
        id: ConnectionId,
        account: &str,
    ) -> Option<(oneshot::Receiver<Result<(), String>>, SessionRef)> {
        let session = self.presence_session(id)?;
        let presence = self.shared.presence.as_ref()?;
        Some((presence.claim(account, session), session))
    }

    /// `id` holds `account`'s key (its claim succeeded, or it arrived with it).
    pub(super) fn hold_claim(&mut self, id: ConnectionId, account: &str) {
        if let Some(session) = self.presence_session(id) {
            self.presence.claims.insert(
                id,
                PresenceClaim {
                    account: account.to_owned(),
                    session,
                },
            );
        }
    }

    /// `id` left this zone (handed over): its claim goes with it.
    pub(super) fn claim_leaves(&mut self, id: ConnectionId) {
        self.presence.claims.remove(&id);
    }

    /// `id` is leaving for good: its logout save is offered (with a commit barrier when it
    /// holds a claim) and its claim released once that commits.
    pub(super) fn leave_with_presence(&mut self, id: ConnectionId) {
        let Some(claim) = self.presence.claims.remove(&id) else {
            self.save_leaving(id, false);
            return;
        };
        match self.save_leaving(id, true) {
            Some(committed) => {
                if let Some(presence) = &self.shared.presence {
                    // A new login waits for this save instead of taking the key over.
                    presence.closing(&claim.account, claim.session);
                }
                self.presence.releasing.push(Releasing { claim, committed });
            }
            None => self.release_claim(&claim),
        }
    }

    fn release_claim(&self, claim: &PresenceClaim) {
        if let Some(presence) = &self.shared.presence {
            presence.release(&claim.account, claim.session);
        }
    }

    /// Releases the claims whose logout saves committed (every tick).
    pub(super) fn poll_releases(&mut self) {
        let mut i = 0;
        while i < self.presence.releasing.len() {
            match self.presence.releasing[i].committed.try_recv() {
                Err(TryRecvError::Empty) => i += 1,
                outcome => {
                    let done = self.presence.releasing.swap_remove(i);
                    if let Ok(Err(e)) = outcome {
                        tracing::debug!(account = %done.claim.account, error = %e, "logout save not committed in full; releasing the account's presence");
                    }
                    self.release_claim(&done.claim);
                }
            }
        }
    }

    /// At shutdown: waits for the releases' commits until `deadline`.
    pub(super) async fn finish_releases(&mut self, deadline: Instant) {
        loop {
            self.poll_releases();
            if self.presence.releasing.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(zone = %self.metrics.zone_label, sessions = self.presence.releasing.len(), "logout saves not committed at shutdown: their accounts' presence keys are left to expire");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
