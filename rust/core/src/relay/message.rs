//! The relay's one message type, [`Batch`], and its encoding: one format-version byte, then
//! the batch in postcard (see `RELAY_FORMAT.md`).
//!
//! A batch travels one way, between one gateway and one zone process, and carries items
//! for any number of that gateway's connections: the zone process sends a batch per
//! gateway after each zone tick, the gateway one per millisecond of client traffic and per
//! timer tick (see `RELAY_FORMAT.md`, section 4).

use serde::{Deserialize, Serialize};

/// Version of the relay format. A process that receives another version drops the batch
/// and counts it (`RelayError::Version`); a rolling upgrade that changes the format runs
/// the new version under another world name (see `RELAY_FORMAT.md`, "Versions").
pub const RELAY_FORMAT_VERSION: u8 = 5;

/// A connection's number in items (`conn`): the gateway's serial number for the
/// connection in the high 48 bits, the incarnation of its streams in the low 16. Each
/// handoff between zone processes starts new streams under the next incarnation (wrapping),
/// so items of an old stream never mix with the new one's (`RELAY_FORMAT.md`, section 5).
#[must_use]
pub fn conn_number(serial: u64, incarnation: u16) -> u64 {
    (serial << 16) | u64::from(incarnation)
}

/// The serial part of a `conn` number (see [`conn_number`]).
#[must_use]
pub fn conn_serial(conn: u64) -> u64 {
    conn >> 16
}

/// The incarnation part of a `conn` number (see [`conn_number`]).
#[must_use]
pub fn conn_incarnation(conn: u64) -> u16 {
    (conn & 0xFFFF) as u16
}

/// The `conn` number of the next incarnation of the same connection.
#[must_use]
pub fn next_incarnation(conn: u64) -> u64 {
    conn_number(conn_serial(conn), conn_incarnation(conn).wrapping_add(1))
}

/// Largest encoded batch, bytes: NATS's default maximum payload (1 MiB). Encoders split
/// their items over several batches below it; decoders refuse larger ones.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// What a batch names its sender as, so the receiver knows where to send that connection's
/// items from now on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The gateway instance the connections belong to (a random `u64` each gateway process
    /// draws at start, so a restarted gateway never meets its predecessor's connections).
    pub gateway: u64,
    /// The NATS subject the receiver must send this batch's connections' items to (the
    /// sender's own subject). At most [`MAX_SUBJECT_BYTES`].
    pub reply_to: String,
    /// The items, in the order they were produced.
    pub items: Vec<Item>,
}

/// Longest `reply_to`, bytes.
pub const MAX_SUBJECT_BYTES: usize = 256;

/// One thing said about one connection (`conn`: the gateway's number for it, unique
/// within the gateway instance).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Item {
    /// A QUIC datagram, as received from the client (gateway to zone) or to send to it
    /// (zone to gateway). Unreliable: never retransmitted.
    Datagram {
        /// The connection.
        conn: u64,
        /// The datagram's bytes (at most the QUIC datagram size the gateway negotiated).
        bytes: Vec<u8>,
    },
    /// The stream item numbered `seq` of the connection's stream in this direction (see
    /// [`super::reliable`]). Sent again until acknowledged.
    Stream {
        /// The connection.
        conn: u64,
        /// Its number: 0 for the first item of the direction, then one more per item.
        seq: u64,
        /// The item.
        item: StreamItem,
    },
    /// The sender has every stream item of `conn` numbered below `next_seq` (cumulative),
    /// and the receiver may send items numbered below `credit_end`.
    Ack {
        /// The connection.
        conn: u64,
        /// The lowest item number not yet received in order.
        next_seq: u64,
        /// Flow control: items at or above it may not be sent yet (see
        /// [`super::reliable`]).
        credit_end: u64,
    },
}

/// What a connection's reliable stream carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamItem {
    /// Gateway to zone, always item 0: a new connection whose session starts in zone
    /// `home_zone` (the zone that owns the spawn position; the zone process moves it on
    /// like any login).
    Open {
        /// The zone id the session starts in.
        home_zone: u16,
    },
    /// Control-stream bytes in order (either direction): what the client wrote on its
    /// control stream, or what the session writes to it.
    Bytes(Vec<u8>),
    /// Zone to gateway: the session accepted the login, so the gateway starts relaying the
    /// client's datagrams (before it, they are dropped at the gateway and counted as
    /// `unauthenticated`, as on a single server).
    LoggedIn,
    /// The connection is over. Gateway to zone: the client's QUIC connection ended, with
    /// this `DisconnectReason` code (as the gateway saw it). Zone to gateway: the session
    /// ended; the gateway finishes the control stream and closes the QUIC connection with
    /// this code. The last item of its direction.
    End {
        /// A `DisconnectReason` code (`mmo_core::control::DisconnectReason::code`); an
        /// unknown code is read as `ServerShutdown` (zone to gateway) or `ClientQuit`.
        reason_code: u16,
    },
    /// Zone to gateway, the last item of the old zone process's direction: the session
    /// moved to another zone process (a handoff across processes, `RELAY_FORMAT.md`
    /// section 5). The gateway sends this connection's items to `zone_process` from now on,
    /// starting both directions again at item 0: it first resends, in order, its items
    /// numbered `resume_seq` and above (the old process did not take them), then goes on;
    /// items the new process sent before this one are delivered after it.
    Moved {
        /// The new zone process's id (its subject is `mmo.<world>.zproc.<id as 16 hex
        /// digits>`).
        zone_process: u64,
        /// The first of the gateway's items the old process did not take.
        resume_seq: u64,
    },
    /// Zone to gateway, after `LoggedIn` and again whenever the session changes zone
    /// instance within the process: what the gateway needs to have the session restarted
    /// from its last save if this process stops (`RELAY_FORMAT.md` section 7).
    Session(SessionTicket),
    /// Gateway to zone, always item 0 (instead of `Open`): restart a session whose zone
    /// process stopped, from the character's last save, in the zone instance the ticket
    /// names (`RELAY_FORMAT.md` section 7). The client is logged in already: the session
    /// starts with `Rejoined`, not `Welcome`.
    Rejoin(SessionTicket),
    /// Gateway to zone, always item 0 (instead of `Open`), on the subject every zone
    /// process hears (`mmo.<world>.zone.resume`): the client continues a session it had
    /// over another connection (`RELAY_FORMAT.md` section 8). Only the process whose
    /// session issued `token` answers; it replays the session's control bytes from
    /// `received_bytes` on.
    Resume {
        /// The client's `ClientControl::Resume` token (at most 64 bytes).
        token: Vec<u8>,
        /// The client's count of session bytes after the token's frame.
        received_bytes: u64,
    },
    /// Zone to gateway, item 0 of the stream a handoff's receiver opens (`RELAY_FORMAT.md`
    /// section 5): what the gateway needs to switch the connection to it without the
    /// sender's `Moved`, when the sender falls silent. Ignored when delivered after `Moved`.
    TakenOver(SenderTail),
}

/// The end of a handoff sender's streams, as it handed the session over (carried by
/// [`StreamItem::TakenOver`] and the `Handoff` peer message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderTail {
    /// The first of the gateway's items the sender did not take (what its `Moved` says).
    pub resume_seq: u64,
    /// The sender's number of the first of `items`.
    pub first_seq: u64,
    /// The sender's items to the gateway not acknowledged when it handed the session over
    /// (sent or not yet), in order: the gateway delivers those it did not receive.
    pub items: Vec<StreamItem>,
}

/// Who a logged-in session is and where it plays: carried by [`StreamItem::Session`] and
/// [`StreamItem::Rejoin`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTicket {
    /// The zone instance the session is in.
    pub zone: u16,
    /// The account the login token named (1-256 bytes).
    pub account: String,
    /// The character's database id, when the zone process has a character store.
    pub character_id: Option<u64>,
}

/// Why a relay batch or item was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The batch's first byte is another format version.
    #[error("relay batch of format version {got}, this process speaks {RELAY_FORMAT_VERSION}")]
    Version {
        /// The version byte received.
        got: u8,
    },
    /// An empty message (no version byte).
    #[error("empty relay message")]
    Empty,
    /// Larger than [`MAX_BATCH_BYTES`].
    #[error("relay batch of {len_bytes} bytes (at most {MAX_BATCH_BYTES})")]
    TooLarge {
        /// Its length.
        len_bytes: usize,
    },
    /// Not a batch in postcard, or bytes left over.
    #[error("malformed relay batch: {0}")]
    Malformed(String),
    /// `reply_to` is empty or longer than [`MAX_SUBJECT_BYTES`].
    #[error("relay batch names a bad reply subject ({len_bytes} bytes)")]
    BadReplySubject {
        /// Its length.
        len_bytes: usize,
    },
    /// A stream item far beyond the receiver's window (see [`super::reliable::WINDOW_ITEMS`]):
    /// the sender ignores acknowledgements; the connection is closed.
    #[error("stream item {seq} is beyond the window (next expected {next_seq})")]
    BeyondWindow {
        /// The item's number.
        seq: u64,
        /// The receiver's next expected number.
        next_seq: u64,
    },
    /// An acknowledgement of items never sent.
    #[error("acknowledgement up to {next_seq} but only {sent} items were sent")]
    AckBeyondSent {
        /// What the acknowledgement said.
        next_seq: u64,
        /// Items sent so far.
        sent: u64,
    },
}

impl Batch {
    /// The batch's wire form: [`RELAY_FORMAT_VERSION`], then postcard.
    ///
    /// # Errors
    /// [`RelayError::TooLarge`] when the result would exceed [`MAX_BATCH_BYTES`] (callers
    /// split their items; see [`Batch::encoded_item_len`]), [`RelayError::BadReplySubject`]
    /// for an empty or overlong `reply_to`.
    pub fn encode(&self) -> Result<Vec<u8>, RelayError> {
        check_subject(&self.reply_to)?;
        let body = postcard::to_stdvec(self).map_err(|e| RelayError::Malformed(e.to_string()))?;
        let mut framed = Vec::with_capacity(body.len() + 1);
        framed.push(RELAY_FORMAT_VERSION);
        framed.extend_from_slice(&body);
        if framed.len() > MAX_BATCH_BYTES {
            return Err(RelayError::TooLarge {
                len_bytes: framed.len(),
            });
        }
        Ok(framed)
    }

    /// Reads a batch made by [`Batch::encode`].
    ///
    /// # Errors
    /// Every way the bytes can be wrong, named ([`RelayError`]).
    pub fn decode(bytes: &[u8]) -> Result<Batch, RelayError> {
        if bytes.len() > MAX_BATCH_BYTES {
            return Err(RelayError::TooLarge {
                len_bytes: bytes.len(),
            });
        }
        let (&version, rest) = bytes.split_first().ok_or(RelayError::Empty)?;
        if version != RELAY_FORMAT_VERSION {
            return Err(RelayError::Version { got: version });
        }
        let (batch, left): (Batch, &[u8]) =
            postcard::take_from_bytes(rest).map_err(|e| RelayError::Malformed(e.to_string()))?;
        if !left.is_empty() {
            return Err(RelayError::Malformed(format!(
                "{} bytes after the batch",
                left.len()
            )));
        }
        check_subject(&batch.reply_to)?;
        Ok(batch)
    }

    /// An upper bound of the bytes `item` adds to an encoded batch (its postcard length;
    /// the item count's varint may grow by a byte or two more per batch, which
    /// [`BATCH_OVERHEAD_BYTES`] covers).
    #[must_use]
    pub fn encoded_item_len(item: &Item) -> usize {
        postcard::experimental::serialized_size(item).unwrap_or(usize::MAX)
    }
}

/// Bytes a batch takes besides its items, at most: the version byte, the gateway (a
/// varint, at most 10), the subject (length varint and at most [`MAX_SUBJECT_BYTES`]) and
/// the item count's varint.
pub const BATCH_OVERHEAD_BYTES: usize = 1 + 10 + 2 + MAX_SUBJECT_BYTES + 5;

fn check_subject(subject: &str) -> Result<(), RelayError> {
    if subject.is_empty() || subject.len() > MAX_SUBJECT_BYTES {
        return Err(RelayError::BadReplySubject {
            len_bytes: subject.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Batch {
        Batch {
            gateway: 0xdead_beef_0123,
            reply_to: "mmo.world.gw.00000000deadbeef".into(),
            items: vec![
                Item::Stream {
                    conn: 7,
                    seq: 0,
                    item: StreamItem::Open { home_zone: 3 },
                },
                Item::Datagram {
                    conn: 7,
                    bytes: vec![1, 2, 3],
                },
                Item::Stream {
                    conn: 7,
                    seq: 1,
                    item: StreamItem::Bytes(vec![9; 40]),
                },
                Item::Ack {
                    conn: 8,
                    next_seq: 12,
                    credit_end: 268,
                },
                Item::Stream {
                    conn: 8,
                    seq: 5,
                    item: StreamItem::End { reason_code: 1 },
                },
                Item::Stream {
                    conn: 9,
                    seq: 2,
                    item: StreamItem::LoggedIn,
                },
            ],
        }
    }

    #[test]
    fn a_batch_round_trips_and_starts_with_the_version() {
        let batch = sample();
        let bytes = batch.encode().unwrap();
        assert_eq!(bytes[0], RELAY_FORMAT_VERSION);
        assert_eq!(Batch::decode(&bytes).unwrap(), batch);
        let items: usize = batch.items.iter().map(Batch::encoded_item_len).sum();
        assert!(bytes.len() <= items + BATCH_OVERHEAD_BYTES);
    }

    #[test]
    fn a_conn_number_carries_its_serial_and_incarnation() {
        let conn = conn_number(7, 0);
        assert_eq!((conn_serial(conn), conn_incarnation(conn)), (7, 0));
        let next = next_incarnation(conn);
        assert_eq!((conn_serial(next), conn_incarnation(next)), (7, 1));
        let last = conn_number(7, u16::MAX);
        assert_eq!(
            next_incarnation(last),
            conn_number(7, 0),
            "wraps within the serial"
        );
    }

    #[test]
    fn bad_batches_are_refused_with_the_reason() {
        let bytes = sample().encode().unwrap();
        assert_eq!(Batch::decode(&[]), Err(RelayError::Empty));
        let mut other = bytes.clone();
        other[0] = RELAY_FORMAT_VERSION + 1;
        assert_eq!(
            Batch::decode(&other),
            Err(RelayError::Version {
                got: RELAY_FORMAT_VERSION + 1
            })
        );
        for cut in 1..bytes.len() {
            assert!(
                matches!(Batch::decode(&bytes[..cut]), Err(RelayError::Malformed(_))),
                "a batch cut at {cut} bytes"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            Batch::decode(&long),
            Err(RelayError::Malformed(_))
        ));
        let huge = vec![RELAY_FORMAT_VERSION; MAX_BATCH_BYTES + 1];
        assert!(matches!(
            Batch::decode(&huge),
            Err(RelayError::TooLarge { .. })
        ));
        let no_subject = Batch {
            reply_to: String::new(),
            ..sample()
        };
        assert!(matches!(
            no_subject.encode(),
            Err(RelayError::BadReplySubject { len_bytes: 0 })
        ));
    }

    #[test]
    fn every_byte_string_decodes_or_is_refused_without_panicking() {
        // A cheap stand-in for the fuzz target: flip each byte of a valid batch.
        let bytes = sample().encode().unwrap();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                if let Ok(batch) = Batch::decode(&b) {
                    let again = batch.encode().expect("a decoded batch encodes");
                    assert_eq!(Batch::decode(&again), Ok(batch), "flip {flip:#x} at {i}");
                }
            }
        }
    }
}

#[cfg(test)]
mod example {
    use super::*;

    /// The worked example of `RELAY_FORMAT.md` ("Example"): the spec's bytes are these.
    #[test]
    fn the_spec_example_encodes_to_the_bytes_it_shows() {
        let batch = Batch {
            gateway: 300,
            reply_to: "mmo.w.gw.000000000000012c".into(),
            items: vec![
                Item::Stream {
                    conn: conn_number(3, 0),
                    seq: 0,
                    item: StreamItem::Open { home_zone: 2 },
                },
                Item::Stream {
                    conn: conn_number(1, 0),
                    seq: 7,
                    item: StreamItem::Bytes(vec![0xaa, 0xbb]),
                },
                Item::Datagram {
                    conn: conn_number(1, 0),
                    bytes: vec![0x01],
                },
                Item::Ack {
                    conn: conn_number(1, 0),
                    next_seq: 5,
                    credit_end: 261,
                },
                Item::Stream {
                    conn: conn_number(2, 0),
                    seq: 9,
                    item: StreamItem::End { reason_code: 1 },
                },
            ],
        };
        let hex: String = batch
            .encode()
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let spec = include_str!("RELAY_FORMAT.md");
        let shown: String = spec
            .split("<!-- example-bytes -->")
            .nth(1)
            .and_then(|rest| rest.split("<!-- end -->").next())
            .expect("the spec marks its example bytes")
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect();
        assert_eq!(hex, shown, "RELAY_FORMAT.md's example bytes");
    }
}
