//! What zone processes of one world say to each other (`RELAY_FORMAT.md`, sections 5 and
//! 6): a player handed over with its session, the answer, the datagrams that reached the old
//! process after the handover, border exports, and kicks of an account's older session.
//!
//! One format-version byte, then a [`PeerMessage`] in postcard. Peer messages travel on
//! `mmo.<world>.peer.zone.<zone id>` (to the process that runs a zone) and
//! `mmo.<world>.peer.proc.<process id>` (answers) and `mmo.<world>.peer.kick` (kicks, to
//! every zone process of the world), never through a gateway. The
//! transfer inside a [`Handoff`] is the session's in-memory state
//! ([`crate::zone::PlayerTransfer::encode`]), so only processes of one build exchange
//! players; a process refuses another version with a clear reason and the player stays.

use serde::{Deserialize, Serialize};

use crate::relay::message::SenderTail;
use crate::zone::BorderExport;

/// Version of the peer format; a message of another version is refused (a handoff is
/// answered with the reason, anything else dropped and counted).
pub const PEER_FORMAT_VERSION: u8 = 5;

/// Largest encoded peer message, bytes (NATS's default maximum payload).
pub const MAX_PEER_MESSAGE_BYTES: usize = 1 << 20;

/// One message between zone processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// A player whose character left a zone of the sender for `to_zone`, run by the
    /// receiver. Answered with [`PeerMessage::Answer`].
    Handoff(Box<Handoff>),
    /// The receiver of a [`Handoff`] took the player, or refused it.
    Answer(HandoffAnswer),
    /// Client datagrams for a handed-over connection that reached the old process after
    /// the handover, in arrival order (sent at most until the gateway switched).
    Datagrams {
        /// The handoff they follow.
        transfer_id: u64,
        /// The datagrams, as the client sent them.
        datagrams: Vec<Vec<u8>>,
    },
    /// The sender's characters near the border of zone `to_zone` (run by the receiver),
    /// after one tick; each replaces the previous export of the same zone.
    Border {
        /// The zone it is for.
        to_zone: u16,
        /// The export.
        export: BorderExport,
    },
    /// An account logged in again: whichever zone process runs this older session closes
    /// it with `duplicate_login` (section 6 of `RELAY_FORMAT.md`).
    Kick(Kick),
}

/// The older session of an account that logged in again, named by where its client's QUIC
/// connection is: the gateway and the gateway's serial for the connection (which stays the
/// same across handoffs; see `conn_serial`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kick {
    /// The account (for the receiver's log).
    pub account: String,
    /// The gateway holding the older session's client connection.
    pub gateway: u64,
    /// The gateway's serial for that connection.
    pub conn_serial: u64,
}

/// A player's session moving to another zone process. See `RELAY_FORMAT.md`, section 5.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// Drawn at random by the sender; answers and forwarded datagrams name it. A receiver
    /// that sees the same id again answers as it did the first time.
    pub transfer_id: u64,
    /// The sending zone process's id.
    pub from_process: u64,
    /// The zone the character left (run by the sender).
    pub from_zone: u16,
    /// The fencing token of the sender's lease on `from_zone` (0 without a directory):
    /// the receiver checks it is the current one before it takes the player.
    pub from_token: u64,
    /// The zone the character entered (run by the receiver).
    pub to_zone: u16,
    /// The gateway holding the client's QUIC connection, its subject, and its number for
    /// the connection: the receiver's items for it go there.
    pub gateway: u64,
    /// The gateway's subject.
    pub gateway_subject: String,
    /// The gateway's number for the connection.
    pub gateway_conn: u64,
    /// The session's name for account presence (`RELAY_FORMAT.md` section 6): the gateway
    /// and connection serial of the connection it logged in on, which differ from
    /// `gateway` and `gateway_conn` after a resumption (section 8).
    pub session_gateway: u64,
    /// That connection's serial.
    pub session_conn_serial: u64,
    /// The session's connection id (kept across zones).
    pub connection: u32,
    /// The logged-in account.
    pub account: Option<String>,
    /// The character name the player chats under (the receiver announces it online).
    pub chat_name: Option<String>,
    /// The session: [`crate::zone::PlayerTransfer::encode`]'s bytes.
    pub transfer: Vec<u8>,
    /// The character's save state (loaded record, last record offered, versions), in the
    /// driver's encoding; `None` without a character store.
    pub save: Option<Vec<u8>>,
    /// Control-stream bytes the client sent that reached the old process and the session
    /// did not read yet, in order: the new process reads them first.
    pub control: Vec<Vec<u8>>,
    /// The client's connection already ended, with this `DisconnectReason` code: the
    /// receiver ends the session at once (its logout save is offered there).
    pub client_gone: Option<u16>,
    /// The end of the sender's streams: the receiver sends it to the gateway as its first
    /// item ([`crate::relay::StreamItem::TakenOver`]).
    pub sender_tail: SenderTail,
    /// The session's resumption state (`RELAY_FORMAT.md` section 8), kept by the receiver
    /// so the client's token stays valid; `None` before the session sent its token.
    pub replay: Option<SessionReplay>,
}

/// A session's resumption state as a handoff carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionReplay {
    /// The token's secret (the token is a version byte, then these bytes).
    pub secret: Vec<u8>,
    /// Control bytes sent to the client after the token's frame.
    pub sent_bytes: u64,
    /// The last of them, at most 32 KiB.
    pub kept: Vec<u8>,
}

/// The answer to a [`Handoff`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffAnswer {
    /// The handoff answered.
    pub transfer_id: u64,
    /// The answering zone process's id (the gateway is told to send there).
    pub zone_process: u64,
    /// `None`: the player is here now. `Some(reason)`: refused, nothing was taken.
    pub refused: Option<String>,
}

/// Why a peer message was not decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// No version byte.
    #[error("empty peer message")]
    Empty,
    /// Another format version.
    #[error("peer message of format version {got}, this process speaks {PEER_FORMAT_VERSION}")]
    Version {
        /// The version byte received.
        got: u8,
    },
    /// Larger than [`MAX_PEER_MESSAGE_BYTES`].
    #[error("peer message of {len_bytes} bytes (at most {MAX_PEER_MESSAGE_BYTES})")]
    TooLarge {
        /// Its length.
        len_bytes: usize,
    },
    /// The bytes after the version do not decode.
    #[error("peer message does not decode: {0}")]
    Malformed(String),
}

impl PeerMessage {
    /// [`PEER_FORMAT_VERSION`], then postcard.
    ///
    /// # Errors
    /// [`PeerError::TooLarge`] when the encoding exceeds [`MAX_PEER_MESSAGE_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>, PeerError> {
        let bytes = postcard::to_extend(self, vec![PEER_FORMAT_VERSION])
            .map_err(|e| PeerError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_PEER_MESSAGE_BYTES {
            return Err(PeerError::TooLarge {
                len_bytes: bytes.len(),
            });
        }
        Ok(bytes)
    }

    /// A message from [`PeerMessage::encode`]'s bytes.
    ///
    /// # Errors
    /// See [`PeerError`].
    pub fn decode(bytes: &[u8]) -> Result<PeerMessage, PeerError> {
        if bytes.len() > MAX_PEER_MESSAGE_BYTES {
            return Err(PeerError::TooLarge {
                len_bytes: bytes.len(),
            });
        }
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(PeerError::Empty);
        };
        if version != PEER_FORMAT_VERSION {
            return Err(PeerError::Version { got: version });
        }
        let (message, left): (PeerMessage, &[u8]) =
            postcard::take_from_bytes(rest).map_err(|e| PeerError::Malformed(e.to_string()))?;
        if !left.is_empty() {
            return Err(PeerError::Malformed(format!(
                "{} bytes after the message",
                left.len()
            )));
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::StreamItem;

    #[test]
    fn messages_round_trip_and_bad_bytes_are_refused() {
        let answer = PeerMessage::Answer(HandoffAnswer {
            transfer_id: 7,
            zone_process: 0xABCD,
            refused: Some("zone 3 is not run here".to_owned()),
        });
        let bytes = answer.encode().expect("encoded");
        assert_eq!(bytes[0], PEER_FORMAT_VERSION);
        assert_eq!(PeerMessage::decode(&bytes), Ok(answer));
        let handoff = PeerMessage::Handoff(Box::new(Handoff {
            transfer_id: 1,
            from_process: 2,
            from_zone: 0,
            from_token: 4,
            to_zone: 1,
            gateway: 5,
            gateway_subject: "mmo.w.gw.0000000000000005".to_owned(),
            gateway_conn: 6,
            session_gateway: 8,
            session_conn_serial: 9,
            connection: 7,
            account: Some("alice".to_owned()),
            chat_name: Some("Alice".to_owned()),
            transfer: vec![1, 2, 3],
            save: None,
            control: vec![vec![9, 9]],
            client_gone: None,
            sender_tail: SenderTail {
                resume_seq: 3,
                first_seq: 10,
                items: vec![StreamItem::LoggedIn, StreamItem::Bytes(vec![1])],
            },
            replay: Some(SessionReplay {
                secret: vec![5; 16],
                sent_bytes: 40,
                kept: vec![1, 2],
            }),
        }));
        let bytes = handoff.encode().expect("encoded");
        assert_eq!(PeerMessage::decode(&bytes), Ok(handoff));
        let kick = PeerMessage::Kick(Kick {
            account: "alice".to_owned(),
            gateway: u64::MAX,
            conn_serial: 3,
        });
        assert_eq!(PeerMessage::decode(&kick.encode().unwrap()), Ok(kick));

        assert_eq!(PeerMessage::decode(&[]), Err(PeerError::Empty));
        let mut other = bytes.clone();
        other[0] = PEER_FORMAT_VERSION + 1;
        assert_eq!(
            PeerMessage::decode(&other),
            Err(PeerError::Version {
                got: PEER_FORMAT_VERSION + 1
            })
        );
        assert!(matches!(
            PeerMessage::decode(&bytes[..bytes.len() - 3]),
            Err(PeerError::Malformed(_))
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            PeerMessage::decode(&trailing),
            Err(PeerError::Malformed(m)) if m.contains("after the message")
        ));
        let huge = vec![PEER_FORMAT_VERSION; MAX_PEER_MESSAGE_BYTES + 1];
        assert!(matches!(
            PeerMessage::decode(&huge),
            Err(PeerError::TooLarge { .. })
        ));
    }
}

#[cfg(test)]
mod example {
    use super::*;
    use crate::codec::entity_state::NetEntityState;
    use crate::entity::EntityId;
    use crate::relay::{Batch, Item, StreamItem, conn_number};
    use crate::replication::PriorityCategory;
    use crate::time::Tick;
    use crate::world::ZoneId;
    use crate::zone::GhostState;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The handoff example of `RELAY_FORMAT.md` ("Example"): the spec's bytes are these.
    #[test]
    fn the_spec_handoff_example_encodes_to_the_bytes_it_shows() {
        let moved = Batch {
            gateway: 300,
            reply_to: "mmo.w.zproc.0000000000000001".into(),
            items: vec![Item::Stream {
                conn: conn_number(1, 0),
                seq: 12,
                item: StreamItem::Moved {
                    zone_process: 2,
                    resume_seq: 40,
                },
            }],
        };
        let answer = PeerMessage::Answer(HandoffAnswer {
            transfer_id: 5,
            zone_process: 2,
            refused: None,
        });
        let border = PeerMessage::Border {
            to_zone: 1,
            export: BorderExport {
                from: ZoneId(0),
                tick: Tick(1000),
                states: vec![GhostState {
                    id: EntityId(9),
                    state: NetEntityState {
                        position_m: glam::Vec3::new(1.0, -2.0, 0.5),
                        yaw_rad: 0.0,
                        flags: 0,
                    },
                    archetype: 1,
                    category: PriorityCategory::High,
                }],
            },
        };
        let kick = PeerMessage::Kick(Kick {
            account: "alice".to_owned(),
            gateway: 300,
            conn_serial: 1,
        });
        let rejoin = Batch {
            gateway: 300,
            reply_to: "mmo.w.gw.000000000000012c".into(),
            items: vec![Item::Stream {
                conn: conn_number(1, 2),
                seq: 0,
                item: StreamItem::Rejoin(crate::relay::SessionTicket {
                    zone: 2,
                    account: "alice".to_owned(),
                    character_id: Some(7),
                }),
            }],
        };
        let lines = [
            hex(&moved.encode().unwrap()),
            hex(&answer.encode().unwrap()),
            hex(&border.encode().unwrap()),
            hex(&kick.encode().unwrap()),
            hex(&rejoin.encode().unwrap()),
        ];
        let spec = include_str!("RELAY_FORMAT.md");
        let shown: Vec<String> = spec
            .split("<!-- peer-example-bytes -->")
            .nth(1)
            .and_then(|rest| rest.split("<!-- end -->").next())
            .expect("the spec marks its handoff example bytes")
            .lines()
            .map(|l| {
                l.chars()
                    .filter(char::is_ascii_hexdigit)
                    .collect::<String>()
            })
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            lines.to_vec(),
            shown,
            "RELAY_FORMAT.md's handoff example bytes"
        );
    }
}
