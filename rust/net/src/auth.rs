//! Login authorities: who decides whether the token a client presents on its control stream
//! lets it in.
//!
//! The network layer does not know what a token is. The server is given an
//! [`LoginAuthority`] and asks it, on the zone thread, once per login: the answer must be
//! quick (a signature check, a map lookup), never a database or network round trip, because
//! the tick waits for it. `mmo-server` supplies a JWT authority; [`StaticTokens`] serves tests
//! and local tools.

use std::collections::BTreeMap;

use mmo_core::control::DisconnectReason;

/// What a verified token says about the player.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginGrant {
    /// The account the token was issued to. At most one connection per account is live:
    /// a second login with the same account closes the first with
    /// [`DisconnectReason::DuplicateLogin`].
    pub account: String,
    /// The character the token binds the connection to (a database id of one of the
    /// account's characters); `None`: the account's default character (see
    /// [`crate::persist::CharacterStore::load`]).
    pub character_id: Option<u64>,
}

/// Why a token was refused; sent to the client as its disconnect reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRefusal {
    /// The reason code (usually [`DisconnectReason::BadToken`]).
    pub reason: DisconnectReason,
    /// What was wrong, for the player and the logs ("token expired", "bad signature").
    /// Never contains the token.
    pub message: String,
}

impl LoginRefusal {
    /// A [`DisconnectReason::BadToken`] refusal with `message`.
    #[must_use]
    pub fn bad_token(message: impl Into<String>) -> Self {
        LoginRefusal {
            reason: DisconnectReason::BadToken,
            message: message.into(),
        }
    }
}

/// Decides logins. Called on a zone thread between ticks; must not block.
pub trait LoginAuthority: Send + Sync + std::fmt::Debug {
    /// Checks `token` at wall-clock time `now_unix_s` (seconds since the Unix epoch).
    fn verify(&self, token: &str, now_unix_s: u64) -> Result<LoginGrant, LoginRefusal>;
}

/// A fixed table of tokens and the accounts they stand for. For tests and local tools; a
/// real deployment issues signed, expiring tokens (`mmo-server`'s JWT authority).
#[derive(Clone, Debug, Default)]
pub struct StaticTokens {
    /// token -> account.
    accounts_by_token: BTreeMap<String, String>,
}

impl StaticTokens {
    /// An empty table (every login is refused).
    #[must_use]
    pub fn new() -> Self {
        StaticTokens::default()
    }

    /// Adds `token` for `account` (builder style).
    #[must_use]
    pub fn with(mut self, token: &str, account: &str) -> Self {
        self.accounts_by_token
            .insert(token.to_owned(), account.to_owned());
        self
    }
}

impl LoginAuthority for StaticTokens {
    fn verify(&self, token: &str, _now_unix_s: u64) -> Result<LoginGrant, LoginRefusal> {
        self.accounts_by_token
            .get(token)
            .map(|account| LoginGrant {
                account: account.clone(),
                character_id: None,
            })
            .ok_or_else(|| LoginRefusal::bad_token("unknown token"))
    }
}

/// Seconds since the Unix epoch by the system clock (0 if the clock is before 1970).
#[must_use]
pub fn unix_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_tokens_map_tokens_to_accounts_and_refuse_the_rest() {
        let tokens = StaticTokens::new().with("t-alice", "alice");
        assert_eq!(tokens.verify("t-alice", 0).unwrap().account, "alice");
        let refusal = tokens.verify("t-bob", 0).unwrap_err();
        assert_eq!(refusal.reason, DisconnectReason::BadToken);
        assert!(!refusal.message.contains("t-bob"));
    }
}
