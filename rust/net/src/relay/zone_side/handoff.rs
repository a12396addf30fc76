//! Handoffs and border exports between zone processes (`RELAY_FORMAT.md`, section 5).
//!
//! **Out.** A zone thread hands a player to a zone another process runs exactly as it
//! would to a local one (`zone_thread::PeerMsg::Arrive` into that zone's peer channel);
//! here that channel ends in [`forward_remote`]. The relay then takes what the session has
//! not read of the gateway's stream (the chunks waiting in its control channel and the
//! items received in order), notes where the gateway's stream resumes (`resume_seq`: the
//! first item not taken), stops delivering and acknowledging the gateway's items, and
//! sends a [`Handoff`] to the zone's subject, again every [`RESEND_AFTER_US`] until it is
//! answered. Client datagrams arriving meanwhile are forwarded to the new process.
//! * *Accepted*: the session's outbox is closed, so what the session wrote before the take
//!   reaches the gateway first, then `Moved { new process, resume_seq }` as the last item;
//!   the connection is forgotten once the gateway acknowledged it. The account leaves this
//!   process's registry.
//! * *Refused* (the receiver checked and took nothing): the player is put back into its old
//!   zone, with its unread control bytes, and closed there with `service_unavailable`
//!   (its logout save is offered here). With a directory, a refusal is believed only once
//!   the record says `aborted` (below): another process than the claimer may refuse.
//! * *No answer within [`ASK_AFTER_US`]*: the handoff's decision record in the directory
//!   (`directory::transfer`) settles it: this process records `aborted` unless the
//!   receiver recorded `taken` first. `aborted`: as *refused* (the receiver can no longer
//!   take the player). `taken`: as *accepted* (the answer was lost or is late). Asked again
//!   every [`RESEND_AFTER_US`] while Redis does not answer, for at most
//!   [`UNDECIDED_LIMIT_US`] from the first sending; then (and at once without a directory)
//!   this process gives up: the receiver may have taken the player, so the connection is
//!   ended with `service_unavailable` and nothing is saved here. Either way exactly one
//!   process, or none, saves the character after the handoff.
//!
//! **In.** A [`Handoff`] is taken only when this process runs `to_zone` (and holds its
//! lease), is not stopping, the transfer and save state decode, and then, in one atomic
//! step in the directory, the sender's lease on `from_zone` and this process's on `to_zone`
//! are the current ones (the fencing checks) and the handoff is not decided yet: the step
//! records `taken` by this process
//! (`Fencing::claim_transfer`, tried again every [`CLAIM_RETRY_US`] for at most
//! [`CLAIM_PATIENCE_US`] while Redis does not answer). A claimed handoff whose zone thread
//! is gone after all is turned to `aborted` before it is refused. The session is
//! registered as a relayed connection of the gateway named in the handoff (both streams
//! start again at item 0), its unread control bytes first in its channel, and handed to the
//! zone thread as a local handoff would be. The answer is remembered for
//! `ENDED_MEMORY_US`, so a repeated handoff gets the same answer and never a second copy.
//!
//! **Border exports** to a remote zone are published as they come (one per tick and
//! neighbour); received ones go to the local zone's peer channel, within the same backlog
//! bound as between local zones.
//!
//! The account's fleet-wide presence key (`relay::presence`) names the gateway's connection,
//! so it does not change: the receiver renews it from the arrival on, the sender stops at
//! the answer (or when it gives up). Kicks of an account's older session arrive on their
//! own subject (`RELAY_FORMAT.md` section 6) and close it here if it runs here and is not
//! moving. Not carried across processes: chat deliveries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mmo_core::control::DisconnectReason;
use mmo_core::relay::{
    Handoff, HandoffAnswer, PeerMessage, SenderTail, StreamItem, next_incarnation,
};
use mmo_core::zone::{ConnectionId, PlayerTransfer};
use tokio::sync::mpsc;

use super::{ConnKey, ENDED_MEMORY_US, GatewayAddress, RelayLoop, ZoneConn, count};
use crate::bridge::Link;
use crate::relay::SessionRef;
use crate::relay::directory::{Fencing, TransferDecision};
use crate::zone_set::RemotePeer;
use crate::zone_thread::{AccountRegistry, Conn, PeerMsg, SaveState, ZoneMsg};

/// Client datagrams kept per connection for a handoff the relay has not heard of yet, and
/// queued for forwarding between two flushes, at most (the oldest go first).
pub(super) const MAX_HELD_DATAGRAMS: usize = 256;

/// The sender's unacknowledged control bytes a handoff carries for the gateway
/// ([`SenderTail`]), at most; a larger tail is left out.
const MAX_TAIL_BYTES: usize = 256 * 1024;

/// An unanswered handoff is sent again after this long, µs.
pub(super) const RESEND_AFTER_US: u64 = 300_000;
/// An unanswered handoff is decided through the directory after this long, µs.
pub(super) const ASK_AFTER_US: u64 = 2_000_000;
/// A handoff still undecided this long after it was first sent (the directory did not
/// answer) is given up, µs.
pub(super) const UNDECIDED_LIMIT_US: u64 = 10_000_000;
/// The receiver tries its claim again this long after Redis did not answer, µs.
const CLAIM_RETRY_US: u64 = 250_000;
/// The receiver refuses a handoff it could not claim within this long, µs.
const CLAIM_PATIENCE_US: u64 = 5_000_000;

/// The zone threads' shared tables a handoff touches.
pub(super) struct Peers {
    /// Peer channel of each zone instance (`crate::shard`), by instance id.
    pub(super) senders: Arc<[mpsc::UnboundedSender<PeerMsg>]>,
    /// Whether each zone instance runs here.
    pub(super) local: Vec<bool>,
    pub(super) accounts: AccountRegistry,
    pub(super) border_backlog: Arc<[AtomicUsize]>,
    pub(super) chat: crate::chat::ChatHub,
    /// `None` without a directory (no fencing check).
    pub(super) fencing: Option<Fencing>,
}

impl Peers {
    /// Whether zone `zone` runs in this process.
    pub(super) fn is_local(&self, zone: usize) -> bool {
        self.local.get(zone).copied().unwrap_or(false)
    }
}

/// Records how long a handoff waited for its answer (accepted or refused).
fn record_answer_time(waited_us: u64) {
    #[allow(clippy::cast_precision_loss)] // µs of a wait bounded by the 10 s give-up.
    metrics::histogram!(crate::metrics::HANDOFF_ANSWER_SECONDS).record(waited_us as f64 / 1e6);
}

/// What a local zone sent to a remote one.
pub(super) struct RemoteMsg {
    zone: u16,
    msg: PeerMsg,
}

/// Merges the remote zones' peer channels into one (a task per remote zone).
pub(super) fn forward_remote(remote: Vec<RemotePeer>) -> mpsc::UnboundedReceiver<RemoteMsg> {
    let (tx, rx) = mpsc::unbounded_channel();
    for RemotePeer { zone, mut messages } in remote {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(msg) = messages.recv().await {
                if tx.send(RemoteMsg { zone, msg }).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// A handoff this process sent.
pub(super) struct Moving {
    key: ConnKey,
    from_zone: u16,
    to_zone: u16,
    /// The player as its zone gave it, until answered (put back when refused).
    arrive: Option<PeerMsg>,
    /// Control bytes the session had not read (put back when refused).
    control: Vec<Vec<u8>>,
    client_gone: Option<DisconnectReason>,
    /// The encoded [`Handoff`], sent again until answered.
    message: Vec<u8>,
    resume_seq: u64,
    first_sent_at_us: u64,
    sent_at_us: u64,
    answered: bool,
    /// The directory is being asked for the decision (an abort call is running).
    asking: bool,
    /// When the last abort call started (µs of the relay's clock).
    asked_at_us: Option<u64>,
    /// A receiver's refusal, checked against the directory's record before it is
    /// believed (another process than the claimer may have refused).
    refusal: Option<String>,
    /// Client datagrams to forward.
    datagrams: Vec<Vec<u8>>,
}

impl Moving {
    /// Queues a client datagram for the new process.
    pub(super) fn forward(&mut self, bytes: Vec<u8>) {
        // Bounded (a second's worth at a generous client rate): the oldest go first, the
        // newest inputs matter most.
        if self.datagrams.len() >= MAX_HELD_DATAGRAMS {
            self.datagrams.remove(0);
        }
        self.datagrams.push(bytes);
    }
}

/// A handoff this process received: its answer (`None` while its claim runs, and for good
/// once a claim was revoked: that refusal goes out once, from the revoking task) and the
/// connection it made.
pub(super) struct Arrived {
    answer: Option<HandoffAnswer>,
    key: Option<ConnKey>,
    at_us: u64,
    /// Client datagrams the sender forwarded before this process took the player (its
    /// lease check still running), with when they arrived (µs on the zones' clock),
    /// delivered once it is taken; at most [`MAX_HELD_DATAGRAMS`].
    early: Vec<(Vec<u8>, u64)>,
}

/// What a handoff's directory task (run off the relay loop: the directory can be slow)
/// gives back.
pub(super) enum TaskDone {
    /// A received handoff was claimed (or not).
    Checked(Checked),
    /// The decision of a handoff this process sent and nobody answered.
    Decided {
        transfer_id: u64,
        decision: Result<TransferDecision, String>,
    },
    /// A claimed handoff that could not be taken was turned to `aborted` (or the
    /// directory did not answer): its refusal can go out.
    Revoked {
        from_process: u64,
        answer: HandoffAnswer,
    },
}

/// A received handoff whose claim finished.
pub(super) struct Checked {
    handoff: Box<Handoff>,
    /// The decoded session, from [`RelayLoop::prepare`].
    prepared: Prepared,
    /// `Err(reason)`: refuse it.
    verdict: Result<(), String>,
    /// The directory records it as taken by this process.
    claimed: bool,
}

/// A received handoff's session, save and resumption state, decoded before it is claimed.
pub(super) struct Prepared {
    transfer: Box<PlayerTransfer>,
    save: Option<Box<SaveState>>,
    replay: Option<super::replay::ServerReplay>,
}

impl RelayLoop {
    /// A local zone sent something to a remote zone.
    pub(super) async fn send_remote(&mut self, RemoteMsg { zone, msg }: RemoteMsg) {
        match msg {
            arrive @ PeerMsg::Arrive { .. } => self.hand_out(zone, arrive).await,
            PeerMsg::Border(export) => {
                if let Some(backlog) = self.peers.border_backlog.get(usize::from(zone)) {
                    backlog.fetch_sub(1, Ordering::AcqRel);
                }
                let subject = self.settings.peer_zone_subject(zone);
                let message = PeerMessage::Border {
                    to_zone: zone,
                    export,
                };
                publish_peer(&self.client, &subject, &message).await;
            }
            // Dropping a kick answers it (nobody here has the connection).
            PeerMsg::Kick(..) => {}
            PeerMsg::Chat(_) => count("chat_not_relayed"),
            // Only the relay sends these, to local zones.
            PeerMsg::Resume(_) => {}
        }
    }

    /// Starts handing `arrive`'s player to remote zone `to_zone`.
    async fn hand_out(&mut self, to_zone: u16, arrive: PeerMsg) {
        let PeerMsg::Arrive {
            id,
            from: from_zone,
            transfer,
            mut conn,
            account,
            save,
        } = arrive
        else {
            return;
        };
        // A session can leave its first zone before the relay's next flush learned its id.
        for c in self.conns.values_mut() {
            super::learn_id(c);
        }
        let Some((&key, c)) = self
            .conns
            .iter_mut()
            .find(|(_, c)| c.id == Some(id) && c.moving.is_none() && c.moved_to.is_none())
        else {
            // Every relayed session has its connection here; dropping `conn` closes it.
            let same: Vec<String> = self
                .conns
                .values()
                .filter(|c| c.id == Some(id))
                .map(|c| format!("moving={:?} moved={}", c.moving, c.moved_to.is_some()))
                .collect();
            tracing::error!(
                connection = id.0,
                ?same,
                "handoff of a connection the relay does not know: closing it in its zone"
            );
            conn.link.set_zone(from_zone);
            let back = PeerMsg::Arrive {
                id,
                from: from_zone,
                transfer,
                conn,
                account,
                save,
            };
            self.close_in_zone(
                from_zone,
                id,
                back,
                "handoff to another zone process failed",
            );
            return;
        };
        let transfer_id: u64 = rand::random();
        // Moving from now on: no `Session` ticket or resumption token for the zone it left.
        c.moving = Some(transfer_id);
        // What the session wrote before the take goes into the stream now, so the
        // handoff's tail holds every item the gateway may miss if this process dies.
        let mut datagrams = Vec::new();
        super::drain_outbox(c, key.local, &mut datagrams, &self.peers.local, true);
        let (mut first_seq, mut items) = c.to_gateway.unacked();
        let tail_bytes: usize = items
            .iter()
            .map(|item| match item {
                StreamItem::Bytes(bytes) => bytes.len(),
                _ => 0,
            })
            .sum();
        if tail_bytes > MAX_TAIL_BYTES {
            // Too large to travel with the handoff (a peer message is at most 1 MiB): if
            // this process dies, the gateway closes the client rather than switch with a
            // gap in its control stream.
            count("handoff_tail_dropped");
            first_seq += items.len() as u64;
            items.clear();
        }
        let gateway_address = GatewayAddress {
            subject: c.gateway_subject.clone(),
            gateway: key.gateway,
        };
        // What the session has not read: its channel, then the stream's in-order items.
        let mut control = Vec::new();
        while let Ok(chunk) = conn.control.try_recv() {
            control.push(chunk);
        }
        let mut client_gone = c.lost.take();
        while let Some(item) = c.from_gateway.pop() {
            match item {
                StreamItem::Bytes(bytes) => control.push(bytes),
                StreamItem::End { reason_code } => {
                    client_gone.get_or_insert(
                        DisconnectReason::try_from(reason_code)
                            .unwrap_or(DisconnectReason::ClientQuit),
                    );
                }
                StreamItem::Open { .. }
                | StreamItem::Rejoin(_)
                | StreamItem::Resume { .. }
                | StreamItem::LoggedIn
                | StreamItem::Moved { .. }
                | StreamItem::Session(_)
                | StreamItem::TakenOver(_) => {}
            }
        }
        let resume_seq = c.from_gateway.next_seq();
        let encoded = transfer.encode().and_then(|bytes| {
            let save = save.as_ref().map(|s| s.encode()).transpose()?;
            Ok((bytes, save))
        });
        let handoff = encoded.and_then(|(bytes, save_bytes)| {
            PeerMessage::Handoff(Box::new(Handoff {
                transfer_id,
                from_process: self.me,
                from_zone,
                from_token: self
                    .peers
                    .fencing
                    .as_ref()
                    .and_then(|f| f.token(from_zone))
                    .unwrap_or(0),
                to_zone,
                gateway: key.gateway,
                gateway_subject: c.gateway_subject.clone(),
                // The streams start again under the connection's next incarnation.
                gateway_conn: next_incarnation(key.local),
                session_gateway: c.session.gateway,
                session_conn_serial: c.session.conn_serial,
                connection: id.0,
                account: account.clone(),
                chat_name: self.peers.chat.name_of(id),
                transfer: bytes,
                save: save_bytes,
                control: control.clone(),
                client_gone: client_gone.map(DisconnectReason::code),
                sender_tail: SenderTail {
                    resume_seq,
                    first_seq,
                    items,
                },
                replay: c.replay.export(),
            }))
            .encode()
            .map_err(|e| e.to_string())
        });
        let held = std::mem::take(&mut c.held);
        for datagram in datagrams {
            self.queue(gateway_address.clone(), datagram);
        }
        let now_us = self.now_us();
        let mut moving = Moving {
            key,
            from_zone,
            to_zone,
            arrive: Some(PeerMsg::Arrive {
                id,
                from: from_zone,
                transfer,
                conn,
                account,
                save,
            }),
            control,
            client_gone,
            message: Vec::new(),
            resume_seq,
            first_sent_at_us: now_us,
            sent_at_us: now_us,
            answered: false,
            asking: false,
            asked_at_us: None,
            refusal: None,
            datagrams: held,
        };
        match handoff {
            Ok(message) => {
                let subject = self.settings.peer_zone_subject(to_zone);
                publish_bytes(&self.client, &subject, message.clone()).await;
                moving.message = message;
                count("handoff_sent");
                // Datagrams held for it go out with the next flush: make that now.
                self.flush_soon = true;
                tracing::debug!(
                    connection = id.0,
                    from_zone,
                    to_zone,
                    transfer = transfer_id,
                    "handoff to another zone process sent"
                );
                self.moving.insert(transfer_id, moving);
            }
            Err(e) => {
                tracing::error!(connection = id.0, error = %e, "handoff not encodable: the player stays");
                self.moving.insert(transfer_id, moving);
                self.refused(transfer_id, &e, "handoff_refused");
            }
        }
    }

    /// Resends unanswered handoffs, gives up old ones, forwards datagrams, forgets what
    /// ended. Called at every flush.
    pub(super) async fn poll_handoffs(&mut self, now_us: u64) {
        let mut give_up = Vec::new();
        let mut done = Vec::new();
        for (&transfer_id, m) in &mut self.moving {
            if !self.conns.contains_key(&m.key) {
                done.push(transfer_id);
                continue;
            }
            if !m.answered {
                let waited_us = now_us.saturating_sub(m.first_sent_at_us);
                // A refusal is checked at once (and again if the directory did not answer).
                if waited_us > ASK_AFTER_US || m.refusal.is_some() {
                    match &self.peers.fencing {
                        // An abort call still running is waited for (at most 500 ms).
                        Some(fencing) if waited_us <= UNDECIDED_LIMIT_US || m.asking => {
                            let due = m
                                .asked_at_us
                                .is_none_or(|at| now_us.saturating_sub(at) >= RESEND_AFTER_US);
                            if !m.asking && due {
                                m.asking = true;
                                m.asked_at_us = Some(now_us);
                                ask_decision(
                                    fencing.clone(),
                                    transfer_id,
                                    self.handoff_tasks.clone(),
                                );
                            }
                        }
                        _ => give_up.push(transfer_id),
                    }
                } else if now_us.saturating_sub(m.sent_at_us) >= RESEND_AFTER_US {
                    m.sent_at_us = now_us;
                    count("handoff_resent");
                    let subject = self.settings.peer_zone_subject(m.to_zone);
                    publish_bytes(&self.client, &subject, m.message.clone()).await;
                }
            }
            if !m.datagrams.is_empty() {
                let message = PeerMessage::Datagrams {
                    transfer_id,
                    datagrams: std::mem::take(&mut m.datagrams),
                };
                let subject = self.settings.peer_zone_subject(m.to_zone);
                publish_peer(&self.client, &subject, &message).await;
            }
        }
        for transfer_id in done {
            self.moving.remove(&transfer_id);
        }
        for transfer_id in give_up {
            self.give_up(transfer_id);
        }
        self.arrived
            .retain(|_, a| now_us.saturating_sub(a.at_us) < ENDED_MEMORY_US);
    }

    /// No answer: end the connection here without saving (the receiver may own it).
    fn give_up(&mut self, transfer_id: u64) {
        let Some(mut m) = self.moving.remove(&transfer_id) else {
            return;
        };
        count("handoff_unanswered");
        record_answer_time(self.now_us().saturating_sub(m.first_sent_at_us));
        let Some(PeerMsg::Arrive {
            id, conn, account, ..
        }) = m.arrive.take()
        else {
            return;
        };
        tracing::warn!(
            connection = id.0,
            to_zone = m.to_zone,
            "handoff unanswered: ending the connection here, unsaved (the other process may have the player)"
        );
        conn.link
            .set_close_reason(DisconnectReason::ServiceUnavailable);
        self.unregister(id, account.as_deref());
        // Nor does it renew the account's presence (the receiver does if it took it).
        self.let_go_presence(conn.session);
        self.peers.chat.offline(id);
        if let Some(c) = self.conns.get_mut(&m.key) {
            c.moving = None;
            if let Some(reason) = m.client_gone {
                c.gateway_ended = true;
                c.lost = Some(reason);
            }
        }
        // Dropping `conn` closes the outbox: our `End` follows what the session wrote.
        drop(conn);
    }

    /// The receiver refused (or the handoff could not be encoded, or the directory
    /// recorded it aborted: `event` says which): the player goes back to its old zone and
    /// is closed there with `service_unavailable`, saved as a logout.
    fn refused(&mut self, transfer_id: u64, reason: &str, event: &'static str) {
        let Some(mut m) = self.moving.remove(&transfer_id) else {
            return;
        };
        count(event);
        record_answer_time(self.now_us().saturating_sub(m.first_sent_at_us));
        let Some(PeerMsg::Arrive {
            id,
            from: _,
            transfer,
            mut conn,
            account,
            save,
        }) = m.arrive.take()
        else {
            return;
        };
        tracing::warn!(connection = id.0, to_zone = m.to_zone, %reason, "handoff refused: the player goes back to its zone and is closed there");
        let Some(c) = self.conns.get_mut(&m.key) else {
            return;
        };
        let (control_tx, control_rx) = control_channel_with(std::mem::take(&mut m.control));
        conn.control = control_rx;
        c.control = control_tx;
        c.moving = None;
        if let Some(reason) = m.client_gone {
            c.gateway_ended = true;
            c.lost = Some(reason);
        }
        conn.link.set_zone(m.from_zone);
        let back = PeerMsg::Arrive {
            id,
            from: m.from_zone,
            transfer,
            conn,
            account,
            save,
        };
        self.close_in_zone(
            m.from_zone,
            id,
            back,
            "handoff to another zone process refused",
        );
    }

    /// Puts `back` (a player taken out for a handoff) into local zone `zone` again and
    /// closes it there with `service_unavailable`, so its logout save is offered.
    fn close_in_zone(&self, zone: u16, id: ConnectionId, back: PeerMsg, message: &'static str) {
        let Some(sender) = self.peers.senders.get(usize::from(zone)) else {
            return;
        };
        if sender.send(back).is_ok() {
            let _ = sender.send(PeerMsg::Kick(
                id,
                DisconnectReason::ServiceUnavailable,
                message,
                Arc::default(),
            ));
        }
    }

    /// A receiver refused a handoff. Without a directory the refusal is final. With one,
    /// the record decides: a process other than the one that claims the handoff can
    /// refuse it (one that is stopping or lost its lease still hears the zone's subject),
    /// so the sender records `aborted` unless it was claimed, at once, and acts on that.
    fn on_refusal(&mut self, transfer_id: u64, reason: String) {
        let now_us = self.now_us();
        let Some(m) = self.moving.get_mut(&transfer_id) else {
            return;
        };
        if m.answered {
            return;
        }
        let Some(fencing) = self.peers.fencing.clone() else {
            self.refused(transfer_id, &reason, "handoff_refused");
            return;
        };
        tracing::debug!(transfer = transfer_id, %reason, "handoff refused: checking the record");
        m.refusal.get_or_insert(reason);
        if !m.asking {
            m.asking = true;
            m.asked_at_us = Some(now_us);
            ask_decision(fencing, transfer_id, self.handoff_tasks.clone());
        }
    }

    /// A directory task finished.
    pub(super) async fn handoff_task_done(&mut self, done: TaskDone) {
        match done {
            TaskDone::Checked(checked) => self.finish_handoff(checked).await,
            TaskDone::Decided {
                transfer_id,
                decision,
            } => self.decided(transfer_id, decision),
            TaskDone::Revoked {
                from_process,
                answer,
            } => {
                let subject = self.settings.peer_process_subject(from_process);
                publish_peer(&self.client, &subject, &PeerMessage::Answer(answer)).await;
            }
        }
    }

    /// The directory's decision on a handoff nobody answered in time, or that a receiver
    /// refused.
    fn decided(&mut self, transfer_id: u64, decision: Result<TransferDecision, String>) {
        let Some(m) = self.moving.get_mut(&transfer_id) else {
            // Answered meanwhile (the answer agrees with the record) or given up.
            return;
        };
        m.asking = false;
        if m.answered {
            return;
        }
        match decision {
            Ok(TransferDecision::Aborted) => match m.refusal.take() {
                Some(reason) => self.refused(transfer_id, &reason, "handoff_refused"),
                None => self.refused(
                    transfer_id,
                    "unanswered, and recorded aborted before the receiver took it",
                    "handoff_kept",
                ),
            },
            Ok(TransferDecision::Taken { by_process }) => {
                count("handoff_found_taken");
                tracing::info!(
                    transfer = transfer_id,
                    to = %format!("{by_process:016x}"),
                    "handoff unanswered but recorded taken: handing the connection over"
                );
                self.accepted(transfer_id, by_process);
            }
            Ok(other) => {
                // Not an answer the abort script gives: asked again at the next resend.
                tracing::warn!(
                    transfer = transfer_id,
                    ?other,
                    "handoff decision unreadable"
                );
            }
            Err(e) => {
                tracing::warn!(transfer = transfer_id, error = %e, "handoff decision not read: asking again");
            }
        }
    }

    /// The receiver took the player: our last item to the gateway is `Moved`.
    fn accepted(&mut self, transfer_id: u64, zone_process: u64) {
        let now_us = self.now_us();
        let Some(m) = self.moving.get_mut(&transfer_id) else {
            return;
        };
        if m.answered {
            return;
        }
        m.answered = true;
        self.flush_soon = true;
        count("handed_out");
        record_answer_time(now_us.saturating_sub(m.first_sent_at_us));
        let Some(PeerMsg::Arrive {
            id, conn, account, ..
        }) = m.arrive.take()
        else {
            return;
        };
        if let Some(c) = self.conns.get_mut(&m.key) {
            c.moved_to = Some(StreamItem::Moved {
                zone_process,
                resume_seq: m.resume_seq,
            });
        }
        tracing::debug!(connection = id.0, to = %format!("{zone_process:016x}"), "player handed to another zone process");
        self.unregister(id, account.as_deref());
        self.let_go_presence(conn.session);
        // The new process announced the name online; ours must not say it went offline.
        self.peers.chat.moved_away(id);
        // Dropping `conn` closes the session's outbox: `Moved` follows its last bytes.
        drop(conn);
    }

    /// Stops renewing the presence key of a session that left this process.
    fn let_go_presence(&self, session: Option<SessionRef>) {
        if let (Some(presence), Some(session)) = (&self.presence, session) {
            presence.let_go(session);
        }
    }

    /// Takes the account out of this process's registry (if it still maps to `id`).
    fn unregister(&self, id: ConnectionId, account: Option<&str>) {
        if let Some(account) = account {
            let mut accounts = self
                .peers
                .accounts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if accounts.get(account) == Some(&id) {
                accounts.remove(account);
            }
        }
    }

    /// A message from another zone process.
    pub(super) async fn receive_peer(&mut self, payload: &[u8]) {
        let message = match PeerMessage::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                count("peer_refused");
                tracing::warn!(error = %e, "peer message refused");
                return;
            }
        };
        match message {
            PeerMessage::Kick(kick) => self.kick_session(
                &kick.account,
                SessionRef {
                    gateway: kick.gateway,
                    conn_serial: kick.conn_serial,
                },
            ),
            PeerMessage::Handoff(h) => self.take_handoff(*h).await,
            PeerMessage::Answer(answer) => match answer.refused {
                None => self.accepted(answer.transfer_id, answer.zone_process),
                Some(reason) => self.on_refusal(answer.transfer_id, reason),
            },
            PeerMessage::Datagrams {
                transfer_id,
                datagrams,
            } => {
                let zone_now_us = self.zone_clock.elapsed().as_micros() as u64;
                let datagrams: Vec<(Vec<u8>, u64)> =
                    datagrams.into_iter().map(|d| (d, zone_now_us)).collect();
                let Some(arrived) = self.arrived.get_mut(&transfer_id) else {
                    return;
                };
                if arrived.key.is_none() && arrived.answer.is_none() {
                    // Still being checked: kept until the player is taken here.
                    let room = MAX_HELD_DATAGRAMS.saturating_sub(arrived.early.len());
                    arrived.early.extend(datagrams.into_iter().take(room));
                    return;
                }
                self.deliver_forwarded(transfer_id, datagrams);
            }
            PeerMessage::Border { to_zone, export } => {
                let zone = usize::from(to_zone);
                if !self.peers.local.get(zone).copied().unwrap_or(false) {
                    count("peer_wrong_zone");
                    return;
                }
                let (Some(sender), Some(backlog)) = (
                    self.peers.senders.get(zone),
                    self.peers.border_backlog.get(zone),
                ) else {
                    return;
                };
                if backlog.load(Ordering::Acquire) >= crate::zone_thread::MAX_BORDER_BACKLOG {
                    return;
                }
                backlog.fetch_add(1, Ordering::AcqRel);
                if sender.send(PeerMsg::Border(export)).is_err() {
                    backlog.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// A handoff arrived: answered again when it was seen before; else checked here, then
    /// claimed in the directory by a task of its own (the relay loop never waits for the
    /// directory), whose result [`RelayLoop::finish_handoff`] takes.
    async fn take_handoff(&mut self, h: Handoff) {
        let now_us = self.now_us();
        if let Some(arrived) = self.arrived.get(&h.transfer_id) {
            // Still being checked: the answer goes out when the check is done.
            if let Some(answer) = arrived.answer.clone() {
                let subject = self.settings.peer_process_subject(h.from_process);
                publish_peer(&self.client, &subject, &PeerMessage::Answer(answer)).await;
            }
            return;
        }
        self.arrived.insert(
            h.transfer_id,
            Arrived {
                answer: None,
                key: None,
                at_us: now_us,
                early: Vec::new(),
            },
        );
        // What can be refused without the directory is refused before the claim, so
        // nothing is recorded for it.
        let prepared = match self.prepare(&h) {
            Ok(prepared) => prepared,
            Err(reason) => {
                self.answer_handoff(&h, Err(reason), false).await;
                return;
            }
        };
        let fencing = self.peers.fencing.clone();
        let done = self.handoff_tasks.clone();
        let me = self.me;
        tokio::spawn(async move {
            let (verdict, claimed) = match &fencing {
                None => (Ok(()), false),
                // No lease on `to_zone` here: the claim answers `NotOwner` without Redis.
                Some(fencing) => claim(fencing, &h, me).await,
            };
            let _ = done.send(TaskDone::Checked(Checked {
                handoff: Box::new(h),
                prepared,
                verdict,
                claimed,
            }));
        });
    }

    /// Takes (or refuses) a claimed handoff, and answers.
    async fn finish_handoff(&mut self, checked: Checked) {
        let Checked {
            handoff,
            prepared,
            verdict,
            claimed,
        } = checked;
        let h = *handoff;
        let result = verdict.and_then(|()| self.admit(h.clone(), prepared));
        self.answer_handoff(&h, result, claimed).await;
    }

    /// Counts and answers a handoff taken (`Ok`, the key of its connection here) or
    /// refused; a refused one this process `claimed` is turned to `aborted` in the
    /// directory before its answer goes out.
    async fn answer_handoff(
        &mut self,
        h: &Handoff,
        result: Result<ConnKey, String>,
        claimed: bool,
    ) {
        let (refused, key) = match result {
            Ok(key) => (None, Some(key)),
            Err(reason) => (Some(reason), None),
        };
        if let Some(reason) = &refused {
            count("handoff_in_refused");
            tracing::warn!(connection = h.connection, from_zone = h.from_zone, to_zone = h.to_zone, %reason, "handoff refused");
        } else {
            count("handed_in");
            tracing::debug!(
                connection = h.connection,
                from_zone = h.from_zone,
                to_zone = h.to_zone,
                "player taken from another zone process"
            );
        }
        let answer = HandoffAnswer {
            transfer_id: h.transfer_id,
            zone_process: self.me,
            refused,
        };
        let revoke = claimed && answer.refused.is_some();
        let mut early = Vec::new();
        if let Some(arrived) = self.arrived.get_mut(&h.transfer_id) {
            // A revoked claim is answered once, by the revoking task: repeats of the
            // handoff meanwhile and after it go unanswered, and its sender asks the
            // directory, which says `aborted` once the revocation landed.
            arrived.answer = (!revoke).then(|| answer.clone());
            arrived.key = key;
            early = std::mem::take(&mut arrived.early);
        }
        if !early.is_empty() {
            self.deliver_forwarded(h.transfer_id, early);
        }
        if let (true, Some(fencing)) = (revoke, self.peers.fencing.clone()) {
            count("handoff_revoked");
            revoke_claim(
                fencing,
                h.from_process,
                answer,
                self.me,
                self.handoff_tasks.clone(),
            );
            return;
        }
        let subject = self.settings.peer_process_subject(h.from_process);
        publish_peer(&self.client, &subject, &PeerMessage::Answer(answer)).await;
    }

    /// Delivers client datagrams the sender forwarded (with when they arrived here) to the
    /// zone of the player it handed over; dropped when it was refused, is gone, or is being
    /// handed on again.
    fn deliver_forwarded(&self, transfer_id: u64, datagrams: Vec<(Vec<u8>, u64)>) {
        let Some(c) = self
            .arrived
            .get(&transfer_id)
            .and_then(|a| a.key)
            .and_then(|key| self.conns.get(&key))
        else {
            return;
        };
        if c.moving.is_some() || c.moved_to.is_some() || !c.link.is_logged_in() {
            return;
        }
        let (Some(id), Some(inbox)) = (c.id, self.inboxes.get(usize::from(c.link.zone()))) else {
            return;
        };
        for (bytes, received_us) in datagrams {
            if inbox
                .try_send(ZoneMsg::Datagram(id, bytes, received_us))
                .is_err()
            {
                c.link.drop_datagram("inbox_full");
            }
        }
    }

    /// Checks what a handoff can be refused for without the directory, and decodes its
    /// session; the reason when refused.
    fn prepare(&self, h: &Handoff) -> Result<Prepared, String> {
        let zone = usize::from(h.to_zone);
        if !self.peers.local.get(zone).copied().unwrap_or(false) {
            return Err(format!(
                "zone {} is not run by this zone process",
                h.to_zone
            ));
        }
        if self.stopping {
            return Err("this zone process is stopping".to_owned());
        }
        self.check_key_free(h)?;
        let transfer = PlayerTransfer::decode(&h.transfer)?;
        let save = h.save.as_deref().map(SaveState::decode).transpose()?;
        let replay = h
            .replay
            .clone()
            .map(super::replay::ServerReplay::import)
            .transpose()?;
        Ok(Prepared {
            transfer: Box::new(transfer),
            save: save.map(Box::new),
            replay,
        })
    }

    /// Refuses a handoff whose connection is here and live.
    fn check_key_free(&self, h: &Handoff) -> Result<(), String> {
        let key = ConnKey {
            gateway: h.gateway,
            local: h.gateway_conn,
        };
        match self.conns.get(&key) {
            Some(c) if c.moved_to.is_none() => Err(format!(
                "gateway connection {} is already here",
                h.gateway_conn
            )),
            _ => Ok(()),
        }
    }

    /// Registers a checked and claimed handoff's session here; the reason when refused
    /// (its zone thread stopped, or the connection came back meanwhile: neither happens
    /// in a process that runs on).
    fn admit(&mut self, h: Handoff, prepared: Prepared) -> Result<ConnKey, String> {
        let zone = usize::from(h.to_zone);
        self.check_key_free(&h)?;
        let key = ConnKey {
            gateway: h.gateway,
            local: h.gateway_conn,
        };
        // Handed out earlier and coming back before the gateway confirmed the move: the
        // old entry is finished.
        self.conns.remove(&key);
        let Prepared {
            transfer,
            save,
            replay,
        } = prepared;
        let id = ConnectionId(h.connection);
        let client_gone = h
            .client_gone
            .map(|code| DisconnectReason::try_from(code).unwrap_or(DisconnectReason::ClientQuit));
        let link = Arc::new(Link::new(DisconnectReason::ServerShutdown, true));
        link.set_zone(h.to_zone);
        link.set_logged_in();
        if let Some(account) = &h.account {
            link.set_identity(crate::bridge::SessionIdentity {
                account: account.clone(),
                character_id: save.as_ref().map(|s| s.character_id()),
            });
        }
        let (outbox, outbox_rx) = mpsc::channel(self.outbox_capacity);
        let (control_tx, control_rx) = control_channel_with(h.control);
        let stats = transfer.connection().stats();
        let session = SessionRef {
            gateway: h.session_gateway,
            conn_serial: h.session_conn_serial,
        };
        let conn = Conn::arriving(outbox, control_rx, link.clone(), stats, Some(session));
        let registered = h.account.as_ref().is_some_and(|account| {
            let mut accounts = self
                .peers
                .accounts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match accounts.entry(account.clone()) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(id);
                    true
                }
                // Logged in again meanwhile: the zone closes the arrival as a duplicate.
                std::collections::btree_map::Entry::Occupied(_) => false,
            }
        });
        let account = h.account.clone();
        if let (Some(presence), Some(account)) = (&self.presence, &account) {
            // Its key names the session still; this process renews it from now on (and the
            // zone releases it when the session ends).
            presence.hold(account, session);
        }
        let arrive = PeerMsg::Arrive {
            id,
            from: h.from_zone,
            transfer,
            conn,
            account: h.account,
            save,
        };
        let sender = &self.peers.senders[zone];
        if sender.send(arrive).is_err() {
            if registered {
                self.unregister(id, account.as_deref());
            }
            return Err(format!("zone {} stopped", h.to_zone));
        }
        if let Some(name) = &h.chat_name {
            self.peers.chat.online(name, h.to_zone, id);
        }
        if let Some(reason) = client_gone {
            // Through the peer channel, so the zone has the player when it comes.
            let done: crate::zone_thread::KickDone = Arc::default();
            let _ = sender.send(PeerMsg::Kick(
                id,
                reason,
                "the client left during a handoff",
                done,
            ));
        }
        let mut arrived = ZoneConn::new(&h.gateway_subject, session, outbox_rx, control_tx, link);
        arrived.id = Some(id);
        // The client's token stays valid: no new `ResumeToken` from this process.
        if let Some(replay) = replay {
            arrived.replay = replay;
        }
        // Item 0: lets the gateway switch here should the sender fall silent before its
        // `Moved` (`RELAY_FORMAT.md` section 5).
        arrived
            .to_gateway
            .push(StreamItem::TakenOver(h.sender_tail));
        // The gateway heard `LoggedIn` from the first process; `Session` (this zone) is
        // announced at the first drain (the client's resumption token stays the one the
        // first process gave, carried in `replay`).
        arrived.announced.logged_in = true;
        arrived.gateway_ended = client_gone.is_some();
        arrived.opened_seen = true;
        self.conns.insert(key, arrived);
        self.ended.remove(&key);
        Ok(key)
    }
}

/// A session's control chunk channel (as large as a single server's, or as `chunks` need)
/// holding `chunks` in order, for the session to read first.
fn control_channel_with(chunks: Vec<Vec<u8>>) -> (mpsc::Sender<Vec<u8>>, mpsc::Receiver<Vec<u8>>) {
    let capacity = crate::server::control_chunks().max(chunks.len() + 1);
    let (sender, receiver) = mpsc::channel(capacity);
    for chunk in chunks {
        // Cannot fail: the capacity holds them all.
        let _ = sender.try_send(chunk);
    }
    (sender, receiver)
}

/// Publishes a peer message (dropped and counted when it cannot be encoded or sent).
pub(in crate::relay) async fn publish_peer(
    client: &async_nats::Client,
    subject: &str,
    message: &PeerMessage,
) {
    match message.encode() {
        Ok(bytes) => publish_bytes(client, subject, bytes).await,
        Err(e) => {
            count("peer_unencodable");
            tracing::warn!(%subject, error = %e, "peer message not encodable");
        }
    }
}

async fn publish_bytes(client: &async_nats::Client, subject: &str, bytes: Vec<u8>) {
    let len_bytes = bytes.len() as u64;
    let published = tokio::time::timeout(
        crate::relay::PUBLISH_DEADLINE,
        client.publish(subject.to_owned(), bytes.into()),
    )
    .await;
    match published {
        Ok(Ok(())) => {
            count("peer_sent");
            metrics::counter!(crate::metrics::RELAY_BYTES_SENT_TOTAL).increment(len_bytes);
        }
        Ok(Err(_)) => count("publish_failed"),
        Err(_) => count("publish_timeout"),
    }
}

/// `call` again every [`CLAIM_RETRY_US`] while Redis does not answer, for at most
/// [`CLAIM_PATIENCE_US`]; the last error after that.
async fn with_patience<T, F, Fut>(mut call: F) -> Result<T, crate::NetError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::NetError>>,
{
    let started = tokio::time::Instant::now();
    loop {
        match call().await {
            Err(_) if started.elapsed() < Duration::from_micros(CLAIM_PATIENCE_US) => {
                tokio::time::sleep(Duration::from_micros(CLAIM_RETRY_US)).await;
            }
            done => return done,
        }
    }
}

/// The receiver's claim of handoff `h` as process `me` (`Fencing::claim_transfer`),
/// tried again while Redis does not answer: `(verdict, claimed)`.
async fn claim(fencing: &Fencing, h: &Handoff, me: u64) -> (Result<(), String>, bool) {
    let decision = with_patience(|| {
        fencing.claim_transfer(
            h.transfer_id,
            h.from_zone,
            h.from_process,
            h.from_token,
            h.to_zone,
            me,
        )
    })
    .await;
    match decision {
        Ok(TransferDecision::Taken { by_process }) if by_process == me => (Ok(()), true),
        Ok(TransferDecision::Taken { by_process }) => (
            Err(format!(
                "the handoff is recorded as taken by zone process {by_process:016x}"
            )),
            false,
        ),
        Ok(TransferDecision::Aborted) => (
            Err("the sender gave the handoff up before this process took it".to_owned()),
            false,
        ),
        Ok(TransferDecision::StaleLease) => (
            Err(format!(
                "stale lease: zone {} is not owned by {:016x} with fencing token {} any more",
                h.from_zone, h.from_process, h.from_token
            )),
            false,
        ),
        Ok(TransferDecision::NotOwner) => (
            Err(format!(
                "this zone process holds no current lease on zone {}",
                h.to_zone
            )),
            false,
        ),
        Ok(TransferDecision::Undecided) => (Err("the claim left no decision".to_owned()), false),
        // One of our calls may have landed after all: the revocation turns our `taken` to
        // `aborted` (if Redis answers by then).
        Err(e) => (Err(format!("handoff not claimed: {e}")), true),
    }
}

/// Asks the directory for the decision of unanswered handoff `transfer_id`, recording
/// `aborted` unless it is decided; the result goes to `done`.
fn ask_decision(fencing: Fencing, transfer_id: u64, done: mpsc::UnboundedSender<TaskDone>) {
    tokio::spawn(async move {
        let decision = fencing
            .abort_transfer(transfer_id)
            .await
            .map_err(|e| e.to_string());
        let _ = done.send(TaskDone::Decided {
            transfer_id,
            decision,
        });
    });
}

/// Turns this process's claim of a handoff it cannot take to `aborted` (tried while
/// Redis does not answer, at most [`CLAIM_PATIENCE_US`]), then has `answer` sent.
fn revoke_claim(
    fencing: Fencing,
    from_process: u64,
    answer: HandoffAnswer,
    me: u64,
    done: mpsc::UnboundedSender<TaskDone>,
) {
    tokio::spawn(async move {
        match with_patience(|| fencing.revoke_transfer(answer.transfer_id, me)).await {
            Ok(TransferDecision::Aborted) => {}
            Ok(decision) => {
                tracing::warn!(
                    transfer = answer.transfer_id,
                    ?decision,
                    "claimed handoff not revoked"
                );
            }
            Err(e) => {
                tracing::warn!(transfer = answer.transfer_id, error = %e, "claimed handoff not revoked: the directory does not answer");
            }
        }
        let _ = done.send(TaskDone::Revoked {
            from_process,
            answer,
        });
    });
}
