//! Per-role costs of a run, per connected player, and the fleet they imply at a planned
//! number of concurrent players (`--plan-ccu`), with its monthly cost when prices are given.
//!
//! **Per role** ([`role_figures`]): the scraped processes (the target and every
//! `--also-metrics` process) grouped by `mmo_process_role`; CPU, resident memory and traffic
//! summed over the group's processes and divided by the run's peak CCU. Memory per player is
//! the group's whole resident memory at peak over the CCU, fixed per-process overhead
//! included: at a larger CCU the overhead is spread thinner, so the plan's memory is an upper
//! bound for the same process count.
//!
//! **The plan** ([`plan`]): for `ccu` players, each role needs `cpu per player × ccu ÷`
//! [`CPU_TARGET_SHARE`] cores (the seed's scaling rule adds an instance above 70 % CPU, so
//! a fleet is sized to run at that share) and `memory per player × ccu` memory. Egress is what the
//! bots received on the wire (their mean UDP download rate: QUIC headers, acks and
//! retransmissions included, which the processes' own payload counters leave out), times
//! `ccu`, over a month of [`HOURS_PER_MONTH`] hours: a fleet at its planned CCU all month (an
//! upper bound: scale by your average-to-peak ratio). NATS traffic stays inside the cluster
//! and is reported, not priced.
//!
//! **Prices are inputs, not measurements**: a core-month, a GiB-month of memory and a GiB
//! of egress in US dollars. The cost per monthly player divides the cost per concurrent
//! player by the monthly players per peak concurrent player (`--monthly-players-per-ccu`).
//!
//! A cost is given only when every part was measured (every role's CPU and memory, the
//! egress, at least one player); otherwise the plan says why it has none.
//!
//! What the figures leave out: a run on one small machine shares its cores between the
//! bots and every process, so CPU per player includes contention; CPU is the steady
//! phase's, so the logins and QUIC handshakes of the ramp are in no role; NATS, Redis and
//! PostgreSQL are not scraped (their CPU is not in any role; `ci/service_cpu.py` measures it
//! beside a fleet run); load balancers, storage and support are not priced.

use serde::Serialize;

use crate::server_figures::ServerFigures;

/// The CPU share a planned fleet runs at (the seed's rule: above 70 % CPU, add an instance).
pub const CPU_TARGET_SHARE: f64 = 0.7;
/// Hours in a month (365.25 × 24 ÷ 12).
pub const HOURS_PER_MONTH: f64 = 730.5;
const BYTES_PER_GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One role's measured figures (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoleFigures {
    /// `all`, `gateway`, `zone`, or `unknown` (no `mmo_process_role` in its metrics).
    pub role: String,
    /// Processes of the role that were scraped.
    pub processes: usize,
    /// Their CPU over the steady phase, cores (`None` when one process's is missing).
    pub cpu_cores: Option<f64>,
    /// Their resident memory at peak CCU, MiB.
    pub rss_mib: Option<f64>,
    /// CPU per connected player, millicores.
    pub cpu_millicores_per_player: Option<f64>,
    /// Resident memory per connected player, KiB (fixed overhead included).
    pub memory_kib_per_player: Option<f64>,
    /// Session payload per second sent to clients, per player, as the role's processes
    /// count it (`mmo_bytes_out_total`: in a fleet the zone processes, which encode; the
    /// gateways count none). Egress on the wire is the bots' figure (see the module docs).
    pub client_payload_bytes_per_s_per_player: Option<f64>,
    /// Bytes per second published to NATS, per player.
    pub nats_bytes_per_s_per_player: Option<f64>,
}

/// A sum that is `None` as soon as one part is missing; `None` for no parts.
fn sum_all(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut total = None;
    for v in values {
        total = Some(total.unwrap_or(0.0) + v?);
    }
    total
}

/// A sum over the parts that are present (a process without such traffic has none);
/// `None` when no part is.
fn sum_present(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values
        .flatten()
        .fold(None, |total, v| Some(total.unwrap_or(0.0) + v))
}

/// The processes' figures grouped by role, per player at `ccu` (roles in name order).
#[must_use]
pub fn role_figures(processes: &[&ServerFigures], ccu: usize) -> Vec<RoleFigures> {
    let mut roles: Vec<String> = processes
        .iter()
        .map(|p| p.role.clone().unwrap_or_else(|| "unknown".into()))
        .collect();
    roles.sort();
    roles.dedup();
    let per_player = |v: Option<f64>| v.filter(|_| ccu > 0).map(|v| v / ccu as f64);
    roles
        .into_iter()
        .map(|role| {
            let group: Vec<&ServerFigures> = processes
                .iter()
                .copied()
                .filter(|p| p.role.as_deref().unwrap_or("unknown") == role)
                .collect();
            let cpu_cores = sum_all(group.iter().map(|p| p.cpu_cores));
            let rss_mib = sum_all(group.iter().map(|p| p.rss_mib));
            // Traffic a process does not have (no endpoint, no relay) counts as none.
            let payload = sum_present(group.iter().map(|p| p.traffic.client_bytes_out_per_s));
            let nats = sum_present(group.iter().map(|p| p.traffic.nats_bytes_sent_per_s));
            RoleFigures {
                processes: group.len(),
                cpu_millicores_per_player: per_player(cpu_cores.map(|c| c * 1000.0)),
                memory_kib_per_player: per_player(rss_mib.map(|m| m * 1024.0)),
                client_payload_bytes_per_s_per_player: per_player(payload),
                nats_bytes_per_s_per_player: per_player(nats),
                role,
                cpu_cores,
                rss_mib,
            }
        })
        .collect()
}

/// Prices of the plan's resources, US dollars (inputs, not measurements).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Prices {
    /// One core for a month.
    pub usd_per_core_month: f64,
    /// One GiB of memory for a month.
    pub usd_per_gib_memory_month: f64,
    /// One GiB sent to the internet.
    pub usd_per_gib_egress: f64,
    /// Monthly players per peak concurrent player, for the cost per monthly player.
    pub monthly_players_per_ccu: Option<f64>,
}

/// What one role needs at the planned CCU.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RolePlan {
    /// The role.
    pub role: String,
    /// Cores at [`CPU_TARGET_SHARE`].
    pub cores: f64,
    /// Memory, GiB.
    pub memory_gib: f64,
}

/// The monthly cost of a plan, US dollars.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Cost {
    /// Cores.
    pub compute_usd: f64,
    /// Memory.
    pub memory_usd: f64,
    /// Egress.
    pub egress_usd: f64,
    /// All of it.
    pub total_usd: f64,
    /// Per concurrent player (the seed's target: $0.80).
    pub usd_per_concurrent_player: f64,
    /// Per monthly player (with `monthly_players_per_ccu`).
    pub usd_per_monthly_player: Option<f64>,
}

/// The fleet implied by the measured per-player figures at `ccu` (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CapacityPlan {
    /// Concurrent players planned for.
    pub ccu: u64,
    /// The CPU share the cores are sized for.
    pub cpu_target_share: f64,
    /// Per role (roles missing a CPU or memory figure are left out, with a note).
    pub roles: Vec<RolePlan>,
    /// Client egress per month at the planned CCU, GiB.
    pub egress_gib_per_month: f64,
    /// NATS traffic per month at the planned CCU, GiB (inside the cluster, not priced).
    pub nats_gib_per_month: f64,
    /// The prices used, if given.
    pub prices: Option<Prices>,
    /// The monthly cost, with prices.
    pub cost: Option<Cost>,
    /// What the plan could not use.
    pub notes: Vec<String>,
}

/// The plan for `ccu` players from measured `roles` and the egress per player measured at
/// the clients (`None`: not measured, egress left out with a note).
#[must_use]
pub fn plan(
    roles: &[RoleFigures],
    egress_bytes_per_s_per_player: Option<f64>,
    ccu: u64,
    prices: Option<Prices>,
) -> CapacityPlan {
    let mut notes = Vec::new();
    let mut plans = Vec::new();
    let players = ccu as f64;
    let seconds_per_month = HOURS_PER_MONTH * 3600.0;
    let egress_b_per_s = match egress_bytes_per_s_per_player {
        Some(b) => b * players,
        None => {
            notes.push("no client download rate measured: egress left out of the plan".into());
            0.0
        }
    };
    let mut nats_b_per_s = 0.0;
    for r in roles {
        nats_b_per_s += r.nats_bytes_per_s_per_player.unwrap_or(0.0) * players;
        match (r.cpu_millicores_per_player, r.memory_kib_per_player) {
            (Some(cpu), Some(memory)) => plans.push(RolePlan {
                role: r.role.clone(),
                cores: cpu / 1000.0 * players / CPU_TARGET_SHARE,
                memory_gib: memory * 1024.0 * players / BYTES_PER_GIB,
            }),
            _ => notes.push(format!(
                "role {} has no CPU or memory figure per player: left out of the plan",
                r.role
            )),
        }
    }
    let egress_gib_per_month = egress_b_per_s * seconds_per_month / BYTES_PER_GIB;
    // A cost with a part missing would be too low and look whole: none at all, said why.
    let complete = egress_bytes_per_s_per_player.is_some()
        && !plans.is_empty()
        && plans.len() == roles.len()
        && ccu > 0;
    if prices.is_some() && !complete {
        notes.push(
            "no cost: a part of the fleet (a role, egress or any player) was not measured".into(),
        );
    }
    let cost = prices.filter(|_| complete).map(|p| {
        let cores: f64 = plans.iter().map(|r| r.cores).sum();
        let memory: f64 = plans.iter().map(|r| r.memory_gib).sum();
        let compute_usd = cores * p.usd_per_core_month;
        let memory_usd = memory * p.usd_per_gib_memory_month;
        let egress_usd = egress_gib_per_month * p.usd_per_gib_egress;
        let total_usd = compute_usd + memory_usd + egress_usd;
        let per_ccu = total_usd / players;
        Cost {
            compute_usd,
            memory_usd,
            egress_usd,
            total_usd,
            usd_per_concurrent_player: per_ccu,
            usd_per_monthly_player: p
                .monthly_players_per_ccu
                .filter(|m| *m > 0.0)
                .map(|m| per_ccu / m),
        }
    });
    CapacityPlan {
        ccu,
        cpu_target_share: CPU_TARGET_SHARE,
        roles: plans,
        egress_gib_per_month,
        nats_gib_per_month: nats_b_per_s * seconds_per_month / BYTES_PER_GIB,
        prices,
        cost,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_figures::TrafficFigures;

    fn process(role: &str, cpu: f64, rss_mib: f64, out: Option<f64>, nats: f64) -> ServerFigures {
        ServerFigures {
            role: Some(role.into()),
            cpu_cores: Some(cpu),
            rss_mib: Some(rss_mib),
            traffic: TrafficFigures {
                client_bytes_out_per_s: out,
                client_bytes_in_per_s: None,
                nats_bytes_sent_per_s: Some(nats),
            },
            ..ServerFigures::default()
        }
    }

    #[test]
    fn roles_are_summed_per_player_and_the_plan_scales_them() {
        let g1 = process("gateway", 0.1, 50.0, Some(200_000.0), 10_000.0);
        let g2 = process("gateway", 0.1, 50.0, Some(200_000.0), 10_000.0);
        let z = process("zone", 0.4, 200.0, None, 300_000.0);
        let roles = role_figures(&[&z, &g1, &g2], 100);
        assert_eq!(roles.len(), 2);
        let gw = &roles[0];
        assert_eq!(gw.role, "gateway");
        assert_eq!(gw.processes, 2);
        assert!((gw.cpu_millicores_per_player.unwrap() - 2.0).abs() < 1e-9);
        assert!((gw.memory_kib_per_player.unwrap() - 1024.0).abs() < 1e-9);
        assert!((gw.client_payload_bytes_per_s_per_player.unwrap() - 4000.0).abs() < 1e-9);
        assert_eq!(gw.nats_bytes_per_s_per_player, Some(200.0));
        let zone = &roles[1];
        assert_eq!(zone.client_payload_bytes_per_s_per_player, None);
        assert!((zone.nats_bytes_per_s_per_player.unwrap() - 3000.0).abs() < 1e-9);

        let prices = Prices {
            usd_per_core_month: 20.0,
            usd_per_gib_memory_month: 3.0,
            usd_per_gib_egress: 0.05,
            monthly_players_per_ccu: Some(10.0),
        };
        let p = plan(&roles, Some(4000.0), 10_000, Some(prices));
        // Gateways: 2 millicores × 10,000 ÷ 0.7 = 28.57 cores; zones 4 × 10,000 ÷ 0.7.
        assert!((p.roles[0].cores - 20.0 / 0.7).abs() < 1e-9);
        assert!((p.roles[1].cores - 40.0 / 0.7).abs() < 1e-9);
        // 1 MiB per gateway player: 10,000 MiB.
        assert!((p.roles[0].memory_gib - 10_000.0 / 1024.0).abs() < 1e-9);
        // 4000 B/s × 10,000 players for a month.
        let egress = 4000.0 * 10_000.0 * HOURS_PER_MONTH * 3600.0 / BYTES_PER_GIB;
        assert!((p.egress_gib_per_month - egress).abs() < 1e-6);
        let cost = p.cost.unwrap();
        let cores = 60.0 / 0.7;
        // Gateways 1 MiB, zones 2 MiB per player.
        let memory = (10_000.0 + 20_000.0) / 1024.0;
        let total = cores * 20.0 + memory * 3.0 + egress * 0.05;
        assert!((cost.total_usd - total).abs() < 1e-6);
        assert!((cost.usd_per_concurrent_player - total / 10_000.0).abs() < 1e-9);
        assert!((cost.usd_per_monthly_player.unwrap() - total / 100_000.0).abs() < 1e-9);
        assert!(p.notes.is_empty());
    }

    #[test]
    fn a_missing_figure_leaves_the_role_out_and_says_so() {
        let mut z = process("zone", 0.4, 200.0, None, 1.0);
        z.cpu_cores = None;
        let roles = role_figures(&[&z], 10);
        assert_eq!(roles[0].cpu_millicores_per_player, None);
        let p = plan(&roles, None, 1000, None);
        assert!(p.roles.is_empty());
        assert!(p.notes[0].contains("egress left out"), "{:?}", p.notes);
        assert!(p.notes[1].contains("role zone"), "{:?}", p.notes);
        assert_eq!(p.egress_gib_per_month, 0.0);
        // With prices, a plan missing a part has no cost rather than a low one.
        let prices = Prices {
            usd_per_core_month: 20.0,
            usd_per_gib_memory_month: 3.0,
            usd_per_gib_egress: 0.05,
            monthly_players_per_ccu: None,
        };
        let g = process("gateway", 0.1, 50.0, None, 0.0);
        let roles = role_figures(&[&g, &z], 10);
        let p = plan(&roles, Some(1000.0), 1000, Some(prices));
        assert_eq!(p.roles.len(), 1);
        assert_eq!(p.cost, None);
        assert!(
            p.notes.iter().any(|n| n.contains("no cost")),
            "{:?}",
            p.notes
        );
        let roles = role_figures(&[&g], 10);
        assert!(
            plan(&roles, Some(1000.0), 1000, Some(prices))
                .cost
                .is_some()
        );
        assert_eq!(plan(&roles, None, 1000, Some(prices)).cost, None);
        assert_eq!(p.cost, None);
        // No player connected: nothing per player.
        let roles = role_figures(&[&process("all", 1.0, 100.0, Some(5.0), 0.0)], 0);
        assert_eq!(roles[0].cpu_millicores_per_player, None);
    }
}
