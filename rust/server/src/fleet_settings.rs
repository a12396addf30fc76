//! `[fleet]`: which role this process plays and how it reaches the rest of the fleet.
//!
//! | role | what runs | needs |
//! |---|---|---|
//! | `all` (default) | everything in one process: QUIC endpoint, zones, HTTP login, saving | nothing external |
//! | `gateway` | the QUIC endpoint, whose connections are relayed over NATS to the zone process; HTTP login (accounts) and the operations routes | `nats_url`, the database (accounts) |
//! | `zone` | every zone of the world and their saving; its sessions are the gateways' connections; HTTP serves only `/metrics`, `/healthz`, `/readyz` | `nats_url`, `--redis-url` (the fleet's directory: it holds a lease on each zone it runs), the database (characters), the JWT secret the gateways' logins sign with |
//!
//! Every process of one world uses the same `world` name (it is part of every NATS subject),
//! the same `[world]` layout and the same JWT secret. See `docs/fleet.md`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, error};

/// A process's part in the fleet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in one process (the embedded default).
    #[default]
    All,
    /// Holds players' QUIC connections and relays them to the zone process.
    Gateway,
    /// Runs the zones; its players connect through gateways.
    Zone,
}

impl Role {
    /// The role's name in settings and logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Gateway => "gateway",
            Role::Zone => "zone",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(Role::All),
            "gateway" => Ok(Role::Gateway),
            "zone" => Ok(Role::Zone),
            _ => Err("expected all, gateway or zone".into()),
        }
    }
}

/// The `[fleet]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetSettings {
    /// This process's role.
    pub role: Role,
    /// The NATS server between gateways and zone processes (`nats://host:port`); required
    /// by the `gateway` and `zone` roles, unused by `all`.
    pub nats_url: Option<String>,
    /// The world's name in every NATS subject: 1..=64 letters, digits, `_`, `-`.
    pub world: String,
    /// NATS user of this process (give each role its own, with permissions on its
    /// subjects only; see `docs/fleet.md`). Set with `nats_password_file`, or neither.
    pub nats_user: Option<String>,
    /// File holding that user's password (its content as is, one trailing newline
    /// dropped).
    pub nats_password_file: Option<PathBuf>,
    /// PEM file of the certificate authority of the NATS server's certificate: when set,
    /// the connection must be TLS and the server's certificate is checked against it.
    pub nats_ca_file: Option<PathBuf>,
    /// Zone role: the zones of the layout this process runs (`None`: all). Several zone
    /// processes split a world this way; needs the directory (`--redis-url`).
    pub zones: Option<ZoneList>,
    /// Zone role: report to the Agones SDK sidecar (Ready, Allocate, health pings,
    /// Shutdown) over its REST API ([`crate::agones`]).
    pub agones: bool,
    /// Gateway role with the directory: players the world holds at once; a login past it
    /// gets a place in the login queue instead of a token (`None`: no queue).
    pub max_players: Option<u32>,
    /// Gateway and zone roles with the directory: sessions a shard holds at most. Gateways
    /// place new connections on the home zone's shards by it and ask for a new lane when
    /// every one is full (`None`: [`DEFAULT_SHARD_CAP`], the seed's 900); zone processes
    /// given it merge a shard nobody needs into another by it (`None`: they never merge).
    /// Give every process the same value.
    pub shard_cap: Option<u32>,
    /// Zone role: seconds a shard must have been mergeable (it and another shard of its
    /// zone fit in three quarters of the cap) before its players move there and it is given
    /// back (`None`: [`DEFAULT_SHARD_MERGE_AFTER_S`]).
    pub shard_merge_after_s: Option<u64>,
    /// Gateway role: the QUIC address clients reach this gateway at, which the fleet's
    /// login answers give (`None`: the bound address; one that is unspecified, `0.0.0.0`,
    /// becomes the address the HTTP request arrived on, right only when the chosen gateway
    /// runs on that host).
    pub public_quic_addr: Option<std::net::SocketAddr>,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings {
            role: Role::All,
            nats_url: None,
            world: "default".to_owned(),
            nats_user: None,
            nats_password_file: None,
            nats_ca_file: None,
            zones: None,
            agones: false,
            max_players: None,
            shard_cap: None,
            shard_merge_after_s: None,
            public_quic_addr: None,
        }
    }
}

/// Players per shard before a gateway places new connections on another shard (the
/// seed's "players per instance > 900: spawn a new shard").
pub const DEFAULT_SHARD_CAP: u32 = 900;

/// Seconds a shard must have been mergeable before it merges into another.
pub const DEFAULT_SHARD_MERGE_AFTER_S: u64 = 60;

/// Which zones a zone process runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ZoneList {
    /// `auto`: one zone no other process runs; while every zone has one, the process waits
    /// as a spare and takes the first whose lease expires (its process died).
    Auto(AutoKeyword),
    /// These zone ids.
    These(Vec<u16>),
}

/// The word `auto` in settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoKeyword {
    /// `auto`.
    Auto,
}

/// Parses `--zones` / `MMO_ZONES`: comma-separated zone ids (`0,1`), or `auto`.
///
/// # Errors
/// A part that is not a zone id, naming it.
pub fn parse_zone_list(text: &str) -> Result<ZoneList, ConfigError> {
    if text.trim() == "auto" {
        return Ok(ZoneList::Auto(AutoKeyword::Auto));
    }
    text.split(',')
        .map(|part| {
            part.trim().parse::<u16>().map_err(|_| {
                error(
                    "fleet.zones",
                    text,
                    format!("`{}` is not a zone id (0..=65535) or `auto`", part.trim()),
                )
            })
        })
        .collect::<Result<Vec<u16>, ConfigError>>()
        .map(ZoneList::These)
}

impl FleetSettings {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let world_ok = (1..=64).contains(&self.world.len())
            && self
                .world
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !world_ok {
            return Err(error(
                "fleet.world",
                &self.world,
                "1..=64 letters, digits, `_`, `-`",
            ));
        }
        if self.nats_user.is_some() != self.nats_password_file.is_some() {
            return Err(error(
                "fleet.nats_user",
                self.nats_user.as_deref().unwrap_or("(none)"),
                "set together with fleet.nats_password_file, or neither",
            ));
        }
        if self.agones && self.role != Role::Zone {
            return Err(error(
                "fleet.agones",
                "true",
                "only zone processes run as Agones game servers (gateways are a Deployment)",
            ));
        }
        if let Some(zones) = &self.zones {
            let text = format!("{zones:?}");
            if self.role != Role::Zone {
                return Err(error(
                    "fleet.zones",
                    &text,
                    "only the zone role runs a part of the world's zones",
                ));
            }
            if let ZoneList::These(zones) = zones {
                if zones.is_empty() {
                    return Err(error("fleet.zones", &text, "name at least one zone"));
                }
                let mut sorted = zones.clone();
                sorted.sort_unstable();
                if sorted.windows(2).any(|w| w[0] == w[1]) {
                    return Err(error("fleet.zones", &text, "a zone is named twice"));
                }
            }
        }
        if let Some(max) = self.max_players {
            if self.role != Role::Gateway {
                return Err(error(
                    "fleet.max_players",
                    max,
                    "only the gateway role answers logins with a queue",
                ));
            }
            if !(1..=10_000_000).contains(&max) {
                return Err(error("fleet.max_players", max, "1..=10000000"));
            }
        }
        if let Some(cap) = self.shard_cap {
            if self.role == Role::All {
                return Err(error(
                    "fleet.shard_cap",
                    cap,
                    "shards are a fleet's: only the gateway and zone roles read the cap",
                ));
            }
            if !(1..=100_000).contains(&cap) {
                return Err(error("fleet.shard_cap", cap, "1..=100000"));
            }
        }
        if let Some(after) = self.shard_merge_after_s {
            if self.role != Role::Zone {
                return Err(error(
                    "fleet.shard_merge_after_s",
                    after,
                    "only the zone role merges shards",
                ));
            }
            if !(1..=86_400).contains(&after) {
                return Err(error("fleet.shard_merge_after_s", after, "1..=86400"));
            }
        }
        if let Some(addr) = self.public_quic_addr {
            if self.role != Role::Gateway {
                return Err(error(
                    "fleet.public_quic_addr",
                    addr,
                    "only a gateway is reached at a public QUIC address",
                ));
            }
            if addr.ip().is_unspecified() || addr.port() == 0 {
                return Err(error(
                    "fleet.public_quic_addr",
                    addr,
                    "a client must be able to connect to it: a concrete IP and a port",
                ));
            }
        }
        match (&self.nats_url, self.role) {
            (None, Role::Gateway | Role::Zone) => Err(error(
                "fleet.nats_url",
                "(none)",
                format!("the {} role needs a NATS server", self.role.as_str()),
            )),
            (Some(url), _) => {
                crate::service_settings::check_url("fleet.nats_url", url, &["nats", "tls"])
            }
            (None, Role::All) => Ok(()),
        }
    }

    /// The relay settings of the `gateway` and `zone` roles with the directory's Redis
    /// (`None` for `all` or without a NATS URL, which `validate` refuses for those roles).
    /// Reads the NATS password file.
    ///
    /// # Errors
    /// The password file cannot be read (the message names it, never its content).
    pub fn relay(
        &self,
        redis_url: Option<&str>,
    ) -> Result<Option<mmo_net::relay::RelaySettings>, ConfigError> {
        let Some(url) = &self.nats_url else {
            return Ok(None);
        };
        if self.role == Role::All {
            return Ok(None);
        }
        let password = match &self.nats_password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    error(
                        "fleet.nats_password_file",
                        path.display(),
                        format!("cannot read: {e}"),
                    )
                })?;
                Some(text.strip_suffix('\n').unwrap_or(&text).to_owned())
            }
            None => None,
        };
        let security = (self.nats_user.is_some() || self.nats_ca_file.is_some()).then(|| {
            mmo_net::relay::NatsSecurity {
                user: self.nats_user.clone(),
                password,
                ca_file: self.nats_ca_file.clone(),
            }
        });
        Ok(Some(mmo_net::relay::RelaySettings {
            nats_url: url.clone(),
            world: self.world.clone(),
            redis_url: redis_url.map(str::to_owned),
            nats_security: security,
            zones: match &self.zones {
                Some(ZoneList::These(zones)) => Some(zones.clone()),
                Some(ZoneList::Auto(_)) | None => None,
            },
            take_free_zone: matches!(self.zones, Some(ZoneList::Auto(_))),
            // Gateways place by the cap by default; zone processes merge shards only when
            // given it (it must be the gateways').
            shard_cap: match (self.role, redis_url) {
                (Role::Gateway, Some(_)) => Some(self.shard_cap.unwrap_or(DEFAULT_SHARD_CAP)),
                (Role::Zone, Some(_)) => self.shard_cap,
                _ => None,
            },
            shard_merge_after: std::time::Duration::from_secs(
                self.shard_merge_after_s
                    .unwrap_or(DEFAULT_SHARD_MERGE_AFTER_S),
            ),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_list_parses_and_belongs_to_the_zone_role_only() {
        assert_eq!(
            parse_zone_list("0, 2,3").unwrap(),
            ZoneList::These(vec![0, 2, 3])
        );
        assert_eq!(
            parse_zone_list("auto").unwrap(),
            ZoneList::Auto(AutoKeyword::Auto)
        );
        let bad = parse_zone_list("0,x").unwrap_err();
        assert!(bad.to_string().contains("`x` is not a zone id"), "{bad}");
        let zone = FleetSettings {
            role: Role::Zone,
            nats_url: Some("nats://127.0.0.1:4222".into()),
            zones: Some(ZoneList::These(vec![1])),
            ..FleetSettings::default()
        };
        assert!(zone.validate().is_ok());
        let relay = zone.relay(None).unwrap().unwrap();
        assert_eq!((relay.zones, relay.take_free_zone), (Some(vec![1]), false));
        let auto = FleetSettings {
            zones: Some(ZoneList::Auto(AutoKeyword::Auto)),
            ..zone.clone()
        };
        assert!(auto.validate().is_ok());
        let relay = auto.relay(None).unwrap().unwrap();
        assert_eq!((relay.zones, relay.take_free_zone), (None, true));
        // `auto` does not skip the other checks.
        let auto_without_nats = FleetSettings {
            nats_url: None,
            ..auto.clone()
        };
        assert!(
            auto_without_nats
                .validate()
                .unwrap_err()
                .to_string()
                .contains("NATS")
        );
        // TOML spells it as a string or a list.
        let from_toml: FleetSettings = toml::from_str("zones = \"auto\"").unwrap();
        assert_eq!(from_toml.zones, Some(ZoneList::Auto(AutoKeyword::Auto)));
        let from_toml: FleetSettings = toml::from_str("zones = [0, 3]").unwrap();
        assert_eq!(from_toml.zones, Some(ZoneList::These(vec![0, 3])));
        let twice = FleetSettings {
            zones: Some(ZoneList::These(vec![1, 1])),
            ..zone.clone()
        };
        assert!(
            twice
                .validate()
                .unwrap_err()
                .to_string()
                .contains("named twice")
        );
        let gateway = FleetSettings {
            role: Role::Gateway,
            ..zone.clone()
        };
        assert!(
            gateway
                .validate()
                .unwrap_err()
                .to_string()
                .contains("only the zone role")
        );
    }

    #[test]
    fn the_relay_roles_need_a_nats_url_and_a_good_world_name() {
        assert!(FleetSettings::default().validate().is_ok());
        let gateway = FleetSettings {
            role: Role::Gateway,
            ..FleetSettings::default()
        };
        let e = gateway.validate().unwrap_err();
        assert!(
            e.to_string().contains("fleet.nats_url") || e.option.contains("nats"),
            "{e}"
        );
        let ok = FleetSettings {
            nats_url: Some("nats://127.0.0.1:4222".into()),
            ..gateway.clone()
        };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.relay(None).unwrap().unwrap().world, "default");
        let half_credentials = FleetSettings {
            nats_user: Some("gateway".into()),
            ..ok.clone()
        };
        assert!(half_credentials.validate().is_err());
        let missing_password = FleetSettings {
            nats_password_file: Some("/nonexistent/mmo-nats-password".into()),
            ..half_credentials
        };
        assert!(missing_password.validate().is_ok());
        let e = missing_password.relay(None).unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent/mmo-nats-password"),
            "{e}"
        );
        let bad_world = FleetSettings {
            world: "a.b".into(),
            ..ok.clone()
        };
        assert!(bad_world.validate().is_err());
        let bad_url = FleetSettings {
            nats_url: Some("http://x".into()),
            ..ok
        };
        assert!(bad_url.validate().is_err());
        assert_eq!("Zone".parse::<Role>(), Ok(Role::Zone));
        assert!("zones".parse::<Role>().is_err());
    }

    #[test]
    fn the_shard_cap_belongs_to_the_fleet_roles_with_a_directory() {
        let gateway = FleetSettings {
            role: Role::Gateway,
            nats_url: Some("nats://127.0.0.1:4222".into()),
            ..FleetSettings::default()
        };
        // Placement needs the directory: none without Redis, the seed's 900 by default.
        assert_eq!(gateway.relay(None).unwrap().unwrap().shard_cap, None);
        let redis = Some("redis://127.0.0.1:6379/");
        assert_eq!(
            gateway.relay(redis).unwrap().unwrap().shard_cap,
            Some(DEFAULT_SHARD_CAP)
        );
        let capped = FleetSettings {
            shard_cap: Some(50),
            ..gateway.clone()
        };
        assert!(capped.validate().is_ok());
        assert_eq!(capped.relay(redis).unwrap().unwrap().shard_cap, Some(50));
        for (bad, why) in [(0, "1..=100000"), (100_001, "1..=100000")] {
            let e = FleetSettings {
                shard_cap: Some(bad),
                ..gateway.clone()
            }
            .validate()
            .unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
        // Zone processes merge shards only when given the cap (the gateways').
        let no_cap = FleetSettings {
            role: Role::Zone,
            ..gateway.clone()
        };
        assert_eq!(no_cap.relay(redis).unwrap().unwrap().shard_cap, None);
        let zone = FleetSettings {
            role: Role::Zone,
            shard_merge_after_s: Some(5),
            ..capped.clone()
        };
        assert!(zone.validate().is_ok());
        let relay = zone.relay(redis).unwrap().unwrap();
        assert_eq!(relay.shard_cap, Some(50));
        assert_eq!(relay.shard_merge_after, std::time::Duration::from_secs(5));
        let e = FleetSettings {
            shard_merge_after_s: Some(5),
            ..capped.clone()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("only the zone role"), "{e}");
        let e = FleetSettings {
            shard_merge_after_s: Some(0),
            ..zone
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("1..=86400"), "{e}");
        let e = FleetSettings {
            role: Role::All,
            nats_url: None,
            ..capped
        }
        .validate()
        .unwrap_err();
        assert!(
            e.to_string().contains("only the gateway and zone roles"),
            "{e}"
        );
    }
}
