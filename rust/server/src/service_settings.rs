//! Settings of the server's services: storage (`[storage]`), accounts (`[accounts]`) and
//! chat (`[chat]`). They are sections of [`crate::config::ServerSettings`]; this file holds
//! their fields, defaults and validation so `config.rs` stays about sources and precedence.
//!
//! Every field has a safe default: with no file at all the server keeps its database in
//! `<data_dir>/mmo.db` (SQLite), hashes passwords with argon2id at OWASP's minimum cost, and
//! routes chat in-process.

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, error};

/// Where characters and accounts are kept, and how often they are saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// `sqlite://<path>` or `postgres://user:pass@host:port/db`; `None`: SQLite in
    /// `<data_dir>/mmo.db` (created, WAL mode).
    pub database_url: Option<String>,
    /// A read replica (PostgreSQL) for read-only queries (character lists); `None`: the
    /// primary serves reads too.
    pub read_replica_url: Option<String>,
    /// Connections in each pool (1..=64).
    pub max_connections: u32,
    /// Dirty characters are saved this often, seconds (1..=3600). Logout and shutdown save
    /// at once.
    pub save_interval_s: u64,
    /// Character records the saver holds while the database is unreachable (1..=10,000,000);
    /// beyond it zones keep their characters dirty and offer them again later.
    pub max_backlog_records: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            database_url: None,
            read_replica_url: None,
            max_connections: 8,
            save_interval_s: 30,
            max_backlog_records: 100_000,
        }
    }
}

/// Longest save interval, seconds.
pub const MAX_SAVE_INTERVAL_S: u64 = 3600;

/// Checks that `url` starts with one of the `allowed` schemes; the error names `key` and
/// shows the URL without its password.
pub(crate) fn check_url(key: &str, url: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    match scheme {
        Some(s) if allowed.contains(&s) => Ok(()),
        _ => Err(error(
            key,
            redact_url(url),
            format!("must start with one of {}", allowed.join("://, ") + "://"),
        )),
    }
}

/// `url` with any password replaced by `***`, for messages and logs.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl StorageSettings {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url {
            check_url(
                "storage.database_url",
                url,
                &["sqlite", "postgres", "postgresql"],
            )?;
        }
        if let Some(url) = &self.read_replica_url {
            check_url("storage.read_replica_url", url, &["postgres", "postgresql"])?;
            if !self
                .database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres"))
            {
                return Err(error(
                    "storage.read_replica_url",
                    redact_url(url),
                    "a read replica needs a PostgreSQL storage.database_url",
                ));
            }
        }
        if self.max_connections == 0 || self.max_connections > 64 {
            return Err(error(
                "storage.max_connections",
                self.max_connections,
                "must be within 1..=64",
            ));
        }
        if self.save_interval_s == 0 || self.save_interval_s > MAX_SAVE_INTERVAL_S {
            return Err(error(
                "storage.save_interval_s",
                self.save_interval_s,
                format!("must be within 1..={MAX_SAVE_INTERVAL_S} seconds"),
            ));
        }
        if self.max_backlog_records == 0 || self.max_backlog_records > 10_000_000 {
            return Err(error(
                "storage.max_backlog_records",
                self.max_backlog_records,
                "must be within 1..=10000000",
            ));
        }
        Ok(())
    }
}

/// Accounts, passwords, tokens and login limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSettings {
    /// Whether `POST /v1/accounts` creates accounts.
    pub registration_open: bool,
    /// argon2id memory cost, KiB (8..=1048576). Default 19456 (19 MiB, OWASP's minimum).
    pub argon2_memory_kib: u32,
    /// argon2id iterations (1..=16). Default 2.
    pub argon2_iterations: u32,
    /// argon2id lanes (1..=16). Default 1.
    pub argon2_parallelism: u32,
    /// Lifetime of refresh tokens, seconds (60..=31536000). Default 30 days.
    pub refresh_token_ttl_s: u64,
    /// Failed logins one account may have per minute before it is refused with
    /// `rate_limited` (1..=10000).
    pub failed_logins_per_account_per_min: u32,
    /// Login attempts one IP address may make per minute (1..=100000). Load tests from one
    /// address raise it.
    pub logins_per_address_per_min: u32,
    /// Characters one account may have (1..=100).
    pub max_characters_per_account: u32,
}

impl Default for AccountSettings {
    fn default() -> Self {
        AccountSettings {
            registration_open: true,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            refresh_token_ttl_s: 30 * 24 * 3600,
            failed_logins_per_account_per_min: 5,
            logins_per_address_per_min: 60,
            max_characters_per_account: 8,
        }
    }
}

impl AccountSettings {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ranges: [(&str, u64, u64, u64); 7] = [
            (
                "accounts.argon2_memory_kib",
                self.argon2_memory_kib.into(),
                8,
                1_048_576,
            ),
            (
                "accounts.argon2_iterations",
                self.argon2_iterations.into(),
                1,
                16,
            ),
            (
                "accounts.argon2_parallelism",
                self.argon2_parallelism.into(),
                1,
                16,
            ),
            (
                "accounts.refresh_token_ttl_s",
                self.refresh_token_ttl_s,
                60,
                31_536_000,
            ),
            (
                "accounts.failed_logins_per_account_per_min",
                self.failed_logins_per_account_per_min.into(),
                1,
                10_000,
            ),
            (
                "accounts.logins_per_address_per_min",
                self.logins_per_address_per_min.into(),
                1,
                100_000,
            ),
            (
                "accounts.max_characters_per_account",
                self.max_characters_per_account.into(),
                1,
                100,
            ),
        ];
        for (key, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(error(key, value, format!("must be within {min}..={max}")));
            }
        }
        // argon2 needs at least 8 KiB per lane.
        if self.argon2_memory_kib < 8 * self.argon2_parallelism {
            return Err(error(
                "accounts.argon2_memory_kib",
                self.argon2_memory_kib,
                format!(
                    "must be at least 8 KiB per lane ({} lanes need {} KiB)",
                    self.argon2_parallelism,
                    8 * self.argon2_parallelism
                ),
            ));
        }
        Ok(())
    }
}

/// Chat channels, limits and the cross-process bus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatSettings {
    /// `redis://host:port/`: zone, global and whisper messages cross server processes
    /// through Redis pub/sub, and presence is kept there. `None`: in-process only.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel (`<prefix>:chat:global`, ...): processes see
    /// each other's chat only with the same prefix. 1..=64 letters, digits, `_`, `-`.
    pub redis_prefix: String,
    /// Radius of `say`, metres (1..=500).
    pub say_radius_m: f32,
    /// Lines a player may send at once (1..=100).
    pub burst_lines: u32,
    /// Lines a player may send per minute after the burst (1..=6000).
    pub lines_per_min: u32,
    /// A player who hits the rate limit this many times within a minute is muted
    /// (1..=100).
    pub mute_after_limited: u32,
    /// How long such a mute lasts, seconds (1..=86400).
    pub mute_s: u64,
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings {
            redis_url: None,
            redis_prefix: "mmo".to_owned(),
            say_radius_m: 30.0,
            burst_lines: 5,
            lines_per_min: 30,
            mute_after_limited: 5,
            mute_s: 60,
        }
    }
}

impl ChatSettings {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.redis_url {
            check_url("chat.redis_url", url, &["redis", "rediss"])?;
        }
        let prefix_ok = (1..=64).contains(&self.redis_prefix.len())
            && self
                .redis_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !prefix_ok {
            return Err(error(
                "chat.redis_prefix",
                &self.redis_prefix,
                "1..=64 letters, digits, `_`, `-`",
            ));
        }
        if !(self.say_radius_m.is_finite() && (1.0..=500.0).contains(&self.say_radius_m)) {
            return Err(error(
                "chat.say_radius_m",
                self.say_radius_m,
                "must be within 1..=500 metres",
            ));
        }
        let ranges: [(&str, u64, u64, u64); 4] = [
            ("chat.burst_lines", self.burst_lines.into(), 1, 100),
            ("chat.lines_per_min", self.lines_per_min.into(), 1, 6000),
            (
                "chat.mute_after_limited",
                self.mute_after_limited.into(),
                1,
                100,
            ),
            ("chat.mute_s", self.mute_s, 1, 86_400),
        ];
        for (key, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(error(key, value, format!("must be within {min}..={max}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        StorageSettings::default().validate().unwrap();
        AccountSettings::default().validate().unwrap();
        ChatSettings::default().validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_key_and_hide_passwords() {
        let storage = StorageSettings {
            database_url: Some("mysql://u:secret@h/db".into()),
            ..StorageSettings::default()
        };
        let e = storage.validate().unwrap_err();
        assert!(e.option.contains("database_url"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
        let replica_without_pg = StorageSettings {
            read_replica_url: Some("postgres://r/db".into()),
            ..StorageSettings::default()
        };
        assert!(
            replica_without_pg
                .validate()
                .unwrap_err()
                .message
                .contains("PostgreSQL")
        );
        let accounts = AccountSettings {
            argon2_memory_kib: 8,
            argon2_parallelism: 2,
            ..AccountSettings::default()
        };
        assert!(
            accounts
                .validate()
                .unwrap_err()
                .option
                .contains("argon2_memory_kib")
        );
        let chat = ChatSettings {
            say_radius_m: f32::NAN,
            ..ChatSettings::default()
        };
        assert!(chat.validate().unwrap_err().option.contains("say_radius_m"));
        assert_eq!(
            redact_url("postgres://mmo:pw@127.0.0.1:5432/mmo"),
            "postgres://mmo:***@127.0.0.1:5432/mmo"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
