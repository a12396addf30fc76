//! The decision record of a handoff between zone processes (`RELAY_FORMAT.md` section 5,
//! "Deciding"): one Redis key per handoff that says, once and for all, whether the
//! receiver took the player or the sender kept it.
//!
//! Key `mmo:<world>:transfer:<transfer id, 16 hex digits>`, expiring after
//! [`DECISION_MEMORY_MS`]; its value is `taken <receiving process, 16 hex digits>` or
//! `aborted`. It is written at most once, by whichever of the two processes gets there
//! first, each with a Lua script (one atomic step in Redis) that writes only when the key
//! is absent and otherwise returns what is there:
//!
//! * the receiver, before it takes the player ([`Fencing::claim_transfer`]), and only when
//!   the sender's lease on its zone is still the one in the handoff and the receiver's own
//!   lease on the zone it takes the player into is still current (the fencing checks of
//!   the same step);
//! * the sender, when the receiver has not answered within 2 s
//!   ([`Fencing::abort_transfer`]): if the record then says `taken`, the receiver has the
//!   player and the sender hands the connection over as if it had heard the answer; if it
//!   says `aborted`, the sender keeps the player and the receiver, if it ever sees the
//!   handoff, refuses it.
//!
//! So a crash of either side, a lost answer or a slow receiver leaves exactly one owner.
//! A receiver that claimed and then cannot take the player after all (its zone thread
//! stopped) turns the record to `aborted` before it refuses ([`Fencing::revoke_transfer`]).
//! The scripts touch the sender zone's owner key and the record, which need not share a
//! Redis Cluster slot: like the leases, this needs one Redis (or a replicated primary).

use std::time::Duration;

use super::{Fencing, owner_key};
use crate::NetError;
use crate::shard::ZoneShard;

/// How long a decision record lasts, ms: past any resend of its handoff (the receiver
/// remembers a handoff's answer as long).
pub const DECISION_MEMORY_MS: u64 = 60_000;

/// The longest wait for one decision call, ms (the caller tries again on an error).
const CALL_TIMEOUT_MS: u64 = 500;

/// Records `taken` when no decision exists and both leases are current; returns the
/// decision (the existing one, the new one, `stale` or `not_owner`).
/// KEYS: the sender zone's owner key, the record, the receiver zone's owner key. ARGV: the
/// sender's expected owner value, the `taken` value, the record's lifetime in ms, the
/// receiver's expected owner value.
const CLAIM: &str = r"
local decided = redis.call('GET', KEYS[2])
if decided then return decided end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'stale' end
if redis.call('GET', KEYS[3]) ~= ARGV[4] then return 'not_owner' end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return ARGV[2]
";

/// Records `aborted` when no decision exists; returns the decision.
/// KEYS: the record. ARGV: its lifetime in ms.
const ABORT: &str = r"
local decided = redis.call('GET', KEYS[1])
if decided then return decided end
redis.call('SET', KEYS[1], 'aborted', 'PX', ARGV[1])
return 'aborted'
";

/// Turns our own `taken` into `aborted`; returns the decision.
/// KEYS: the record. ARGV: our `taken` value, the record's lifetime in ms.
const REVOKE: &str = r"
local decided = redis.call('GET', KEYS[1])
if decided == ARGV[1] then
  redis.call('SET', KEYS[1], 'aborted', 'PX', ARGV[2])
  return 'aborted'
end
if decided then return decided end
return 'none'
";

/// What the record of a handoff says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferDecision {
    /// The receiving process took the player.
    Taken {
        /// The process that took it.
        by_process: u64,
    },
    /// The sender kept the player; the handoff cannot be taken any more.
    Aborted,
    /// Not decided, and the sender's lease on its zone is not the one in the handoff
    /// (only [`Fencing::claim_transfer`] answers this; nothing was recorded).
    StaleLease,
    /// Not decided, and the receiver's own lease on the zone it would take the player
    /// into is not current, or not held (only [`Fencing::claim_transfer`] answers this;
    /// nothing was recorded).
    NotOwner,
    /// No record (only [`Fencing::revoke_transfer`] answers this).
    Undecided,
}

impl TransferDecision {
    fn parse(value: &str) -> Result<Self, NetError> {
        let bad = || NetError::Connection(format!("handoff decision record holds {value:?}"));
        match value {
            "aborted" => Ok(Self::Aborted),
            "stale" => Ok(Self::StaleLease),
            "not_owner" => Ok(Self::NotOwner),
            "none" => Ok(Self::Undecided),
            _ => {
                let hex = value.strip_prefix("taken ").ok_or_else(bad)?;
                let by_process = u64::from_str_radix(hex, 16).map_err(|_| bad())?;
                Ok(Self::Taken { by_process })
            }
        }
    }
}

/// The `taken` value naming `process`.
fn taken_value(process: u64) -> String {
    format!("taken {process:016x}")
}

impl Fencing {
    /// The record's key for `transfer_id`.
    fn transfer_key(&self, transfer_id: u64) -> String {
        format!("mmo:{}:transfer:{transfer_id:016x}", self.world)
    }

    /// The receiver's step: records that process `me` takes handoff `transfer_id` into its
    /// zone instance `to_zone` when it is undecided, zone instance `from_zone` is owned by
    /// `from_process` with fencing token `from_token`, and `to_zone` is owned by `me` with
    /// this process's token; returns the decision (`Taken { by_process: me }` when taken).
    ///
    /// # Errors
    /// Redis unreachable or too slow (500 ms): the record may or may not have been written;
    /// call again (the script is idempotent for the same caller).
    pub async fn claim_transfer(
        &self,
        transfer_id: u64,
        from_zone: u16,
        from_process: u64,
        from_token: u64,
        to_zone: u16,
        me: u64,
    ) -> Result<TransferDecision, NetError> {
        let Some(my_token) = self.token(to_zone) else {
            return Ok(TransferDecision::NotOwner);
        };
        let owner =
            |zone: u16| owner_key(&self.world, ZoneShard::of_instance(zone, self.zone_count));
        let mut script = redis::cmd("EVAL");
        script
            .arg(CLAIM)
            .arg(3)
            .arg(owner(from_zone))
            .arg(self.transfer_key(transfer_id))
            .arg(owner(to_zone))
            .arg(format!("{from_process:016x}:{from_token}"))
            .arg(taken_value(me))
            .arg(DECISION_MEMORY_MS)
            .arg(format!("{me:016x}:{my_token}"));
        self.decide(script).await
    }

    /// The sender's step: records that handoff `transfer_id` is aborted unless it is
    /// decided; returns the decision (`Aborted` when the sender keeps the player).
    ///
    /// # Errors
    /// As [`Fencing::claim_transfer`].
    pub async fn abort_transfer(&self, transfer_id: u64) -> Result<TransferDecision, NetError> {
        let mut script = redis::cmd("EVAL");
        script
            .arg(ABORT)
            .arg(1)
            .arg(self.transfer_key(transfer_id))
            .arg(DECISION_MEMORY_MS);
        self.decide(script).await
    }

    /// A receiver that claimed handoff `transfer_id` as process `me` but cannot take the
    /// player: turns its `taken` into `aborted`; returns the decision (`Aborted` when it
    /// was ours).
    ///
    /// # Errors
    /// As [`Fencing::claim_transfer`].
    pub async fn revoke_transfer(
        &self,
        transfer_id: u64,
        me: u64,
    ) -> Result<TransferDecision, NetError> {
        let mut script = redis::cmd("EVAL");
        script
            .arg(REVOKE)
            .arg(1)
            .arg(self.transfer_key(transfer_id))
            .arg(taken_value(me))
            .arg(DECISION_MEMORY_MS);
        self.decide(script).await
    }

    async fn decide(&self, script: redis::Cmd) -> Result<TransferDecision, NetError> {
        let mut connection = self.connection.clone();
        let value: String = tokio::time::timeout(
            Duration::from_millis(CALL_TIMEOUT_MS),
            script.query_async(&mut connection),
        )
        .await
        .map_err(|_| {
            NetError::Connection(format!(
                "fleet directory Redis: no answer in {CALL_TIMEOUT_MS} ms"
            ))
        })?
        .map_err(|e| NetError::Connection(format!("fleet directory Redis: {e}")))?;
        TransferDecision::parse(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_values_parse_and_bad_ones_are_named() {
        assert_eq!(
            TransferDecision::parse(&taken_value(0xab)).unwrap(),
            TransferDecision::Taken { by_process: 0xab }
        );
        assert_eq!(
            TransferDecision::parse("aborted").unwrap(),
            TransferDecision::Aborted
        );
        assert_eq!(
            TransferDecision::parse("stale").unwrap(),
            TransferDecision::StaleLease
        );
        assert_eq!(
            TransferDecision::parse("not_owner").unwrap(),
            TransferDecision::NotOwner
        );
        let e = TransferDecision::parse("taken zz").unwrap_err().to_string();
        assert!(e.contains("\"taken zz\""), "{e}");
        assert!(TransferDecision::parse("kept").is_err());
    }
}
