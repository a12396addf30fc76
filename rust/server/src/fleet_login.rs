//! Logins at a gateway of a fleet (gateway role with `--redis-url`): which gateway the
//! player connects to ([`crate::gateway_registry`]) and, with `[fleet] max_players`, the
//! login queue ([`crate::login_queue`]).
//!
//! Every answer that hands out a login token (`POST /v1/login`, `POST /v1/token/refresh`,
//! `POST /v1/characters/{id}/session`) asks [`FleetLogin::place`] after the credentials
//! were checked:
//!
//! - **let in**: the token, with `quic_addr` = the chosen gateway's public address (the
//!   least loaded fresh gateway, this one included);
//! - **queued**: 202 [`QueuedResponse`]: the ticket, the position, the queue's length, the
//!   estimated wait, when to poll again, and (for login and refresh) the refresh token,
//!   which was already issued or rotated; no login token.
//!
//! `POST /v1/login/queue {ticket}` polls: 200 [`crate::http::SessionResponse`] (a token for
//! the account, bound to the character the queued request named, and the chosen gateway)
//! when let in; 202 [`QueuedResponse`] while waiting; 404 `ticket_unknown` for a ticket that
//! expired (not shown for 30 s) or was never issued; 400 `bad_request` for a body that is
//! not `{"ticket": "..."}`.
//!
//! The token a poll hands out is issued from the ticket (the credentials were checked when
//! the ticket was issued); the zone checks the character's ownership again at the QUIC
//! login.
//!
//! Redis unreachable: logins are let in and sent to this gateway (logged at warn and
//! counted as `unavailable`), so an outage of the directory does not lock players out; the
//! gateways' connection caps still bound each process. A poll during an outage is 503
//! `unavailable`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::gateway_registry::GatewayRegistry;
use crate::http::{ConnAddrs, HttpState, SessionResponse};
use crate::login_queue::{Admission, LoginQueue, POLL_AFTER_S, QueuedLogin, Waiting};

/// Counter, label `outcome` (`let_in`, `queued`, `unavailable`): logins placed by the
/// fleet's placement and queue.
pub const PLACEMENTS_TOTAL: &str = "mmo_login_placements_total";

/// The fleet's side of a gateway's logins.
#[derive(Debug)]
pub struct FleetLogin {
    /// This gateway's entry in the registry.
    pub registry: GatewayRegistry,
    /// Placement and the login queue (without `max_players` nobody waits).
    pub queue: LoginQueue,
}

/// Where a login goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Connect now, to this QUIC address (`None`: this gateway's own).
    Connect(Option<String>),
    /// Wait in the queue.
    Queued(Waiting),
}

/// A login waiting in the queue (HTTP 202).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedResponse {
    /// Always `true`: the answer of a login that waits.
    pub queued: bool,
    /// Shown to `POST /v1/login/queue` (at least every 30 s; secret: it stands for the
    /// checked credentials).
    pub ticket: String,
    /// 1 for the next login to be let in.
    pub position: u64,
    /// Logins waiting, this one included.
    pub queue_length: u64,
    /// Estimated seconds until let in; `null` while there is no estimate.
    pub estimated_wait_s: Option<u64>,
    /// Seconds after which to poll again.
    pub poll_after_s: u64,
    /// Login and refresh: the refresh token (issued or rotated by this request; shown
    /// once). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refresh_token: Option<String>,
    /// Seconds until that refresh token expires.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refresh_expires_in_s: Option<u64>,
}

impl QueuedResponse {
    /// The 202 answer for `waiting`, with the refresh token of the request if any.
    #[must_use]
    pub fn answer(waiting: Waiting, refresh: Option<(String, u64)>) -> Response {
        let (refresh_token, refresh_expires_in_s) = match refresh {
            Some((token, expires)) => (Some(token), Some(expires)),
            None => (None, None),
        };
        (
            StatusCode::ACCEPTED,
            Json(QueuedResponse {
                queued: true,
                ticket: waiting.ticket,
                position: waiting.position,
                queue_length: waiting.queue_length,
                estimated_wait_s: waiting.estimated_wait_s,
                poll_after_s: POLL_AFTER_S,
                refresh_token,
                refresh_expires_in_s,
            }),
        )
            .into_response()
    }
}

/// A queue poll.
#[derive(Debug, Deserialize)]
pub struct PollRequest {
    /// The ticket of a queued answer.
    pub ticket: String,
}

impl FleetLogin {
    /// The fleet side of `gateway`'s logins: registers it in the directory at `redis_url`
    /// (reachable at `fleet.public_quic_addr`, else its bound address) and refreshes its
    /// entry until the returned task is aborted; with `fleet.max_players`, the login queue.
    ///
    /// # Errors
    /// Redis unreachable or a bad URL.
    pub async fn start(
        redis_url: &str,
        fleet: &crate::fleet_settings::FleetSettings,
        gateway: &mmo_net::relay::GatewayProcess,
    ) -> Result<(Arc<FleetLogin>, tokio::task::JoinHandle<()>), String> {
        let registry = GatewayRegistry::connect(redis_url, &fleet.world, gateway.id()).await?;
        let public = fleet.public_quic_addr.unwrap_or(gateway.local_addr());
        if public.ip().is_unspecified() {
            tracing::warn!(%public, "this gateway registers an unspecified QUIC address: logins answered by a gateway on another host would send players to that host; set --public-quic-addr when gateways run on several hosts");
        }
        let connections = gateway.open_connections();
        // Registered before the first login is answered.
        registry.refresh(public, connections()).await?;
        let refresher = registry.spawn_refresh(public, connections);
        let queue = LoginQueue::connect(redis_url, &fleet.world, fleet.max_players).await?;
        tracing::info!(quic_addr = %public, max_players = ?fleet.max_players, "gateway registered in the fleet");
        Ok((Arc::new(FleetLogin { registry, queue }), refresher))
    }

    /// Places a login whose credentials were checked (see the module docs).
    pub async fn place(&self, who: &QueuedLogin) -> Placement {
        match self.try_place(who).await {
            Ok(placement) => placement,
            Err(e) => {
                metrics::counter!(PLACEMENTS_TOTAL, "outcome" => "unavailable").increment(1);
                tracing::warn!(error = %e, account = %who.account, "fleet placement unavailable: letting the login in here");
                Placement::Connect(None)
            }
        }
    }

    async fn try_place(&self, who: &QueuedLogin) -> Result<Placement, String> {
        Ok(self.placement(who, self.queue.enter(who).await?))
    }

    /// Counts and logs an admission's outcome.
    fn placement(&self, who: &QueuedLogin, admission: Admission) -> Placement {
        match admission {
            Admission::LetIn(gateway) => {
                metrics::counter!(PLACEMENTS_TOTAL, "outcome" => "let_in").increment(1);
                Placement::Connect(gateway)
            }
            Admission::Queued(waiting) => {
                metrics::counter!(PLACEMENTS_TOTAL, "outcome" => "queued").increment(1);
                tracing::info!(account = %who.account, position = waiting.position, queue_length = waiting.queue_length, "login queued: the world is full");
                Placement::Queued(waiting)
            }
        }
    }

    /// A queue poll: who waits and where they go, `None` for an unknown ticket.
    ///
    /// # Errors
    /// Redis unreachable or too slow.
    pub async fn poll(&self, ticket: &str) -> Result<Option<(QueuedLogin, Placement)>, String> {
        let Some((who, admission)) = self.queue.poll(ticket).await? else {
            return Ok(None);
        };
        if matches!(admission, Admission::LetIn(_)) {
            tracing::info!(account = %who.account, "queued login let in");
        }
        // A poll that stays queued is not a new placement: not counted.
        let placement = match admission {
            Admission::Queued(waiting) => Placement::Queued(waiting),
            let_in => self.placement(&who, let_in),
        };
        Ok(Some((who, placement)))
    }
}

/// Other gateways a login answer lists for resumption, at most.
pub const MAX_RESUME_ADDRS: usize = 4;

impl FleetLogin {
    /// The fresh gateways other than `quic_addr` (the one the login connects to), as a
    /// client whose request arrived on `local` can use them: where a client whose gateway
    /// dies resumes its session ([`resume_order`], from a random start per answer so a
    /// dead gateway's clients spread over the others).
    #[must_use]
    pub fn resume_addrs(&self, quic_addr: &str, local: Option<SocketAddr>) -> Vec<String> {
        let fresh: Vec<String> = self
            .registry
            .fresh_addresses()
            .iter()
            .map(|a| reachable(a, local))
            .collect();
        resume_order(&fresh, quic_addr, rand::random::<u32>() as usize)
    }
}

/// `fresh` without `quic_addr` and without repeats, at most [`MAX_RESUME_ADDRS`], read
/// round from index `start` (modulo its length).
#[must_use]
pub fn resume_order(fresh: &[String], quic_addr: &str, start: usize) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for k in 0..fresh.len() {
        let address = &fresh[start.wrapping_add(k) % fresh.len()];
        if address != quic_addr && !order.contains(address) {
            order.push(address.clone());
        }
    }
    order.truncate(MAX_RESUME_ADDRS);
    order
}

/// `address` (a registry entry's) as a client can use it: an unspecified IP becomes the
/// one the HTTP request arrived on.
#[must_use]
pub fn reachable(address: &str, local: Option<SocketAddr>) -> String {
    match (address.parse::<SocketAddr>(), local) {
        (Ok(mut addr), Some(local)) if addr.ip().is_unspecified() => {
            addr.set_ip(local.ip());
            addr.to_string()
        }
        _ => address.to_owned(),
    }
}

/// `POST /v1/login/queue` (see the module docs).
pub async fn poll_queue(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(addrs): ConnectInfo<ConnAddrs>,
    body: Result<Json<PollRequest>, JsonRejection>,
) -> Response {
    let request = match crate::http::json_body(body, r#"{"ticket": "..."}"#) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    let Some(fleet) = &state.fleet else {
        return crate::http::error(
            StatusCode::NOT_FOUND,
            "ticket_unknown",
            "this server has no login queue (it is not a gateway of a fleet)".to_owned(),
        );
    };
    match fleet.poll(&request.ticket).await {
        Ok(None) => crate::http::error(
            StatusCode::NOT_FOUND,
            "ticket_unknown",
            "unknown or expired queue ticket (a ticket not shown for 30 s leaves the queue): log in again".to_owned(),
        ),
        Ok(Some((_, Placement::Queued(waiting)))) => QueuedResponse::answer(waiting, None),
        Ok(Some((who, Placement::Connect(addr)))) => {
            let now_s = mmo_net::auth::unix_now_s();
            let token = match who.character_id {
                Some(id) => state.issuer.issue_for_character(&who.account, id, now_s),
                None => state.issuer.issue(&who.account, now_s),
            };
            match token {
                Ok(token) => {
                    let placed =
                        crate::http::Placed::in_fleet(&state, fleet, addr.as_deref(), addrs.local);
                    Json(SessionResponse {
                        token,
                        expires_in_s: state.issuer.ttl_s(),
                        quic_addr: placed.quic_addr,
                        resume_addrs: placed.resume_addrs,
                        fingerprint_sha256: state.fingerprint_hex.clone(),
                    })
                    .into_response()
                }
                Err(e) => {
                    tracing::error!(error = %e, account = %who.account, "token not issued");
                    crate::http::internal()
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "login queue poll failed");
            crate::http::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the login queue is unavailable; try again shortly".to_owned(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumption_addresses_leave_out_the_chosen_gateway_and_repeats_and_rotate() {
        let fresh: Vec<String> = ["a:1", "b:1", "c:1", "b:1", "d:1", "e:1", "f:1"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(resume_order(&fresh, "c:1", 0), ["a:1", "b:1", "d:1", "e:1"]);
        assert_eq!(resume_order(&fresh, "a:1", 5), ["e:1", "f:1", "b:1", "c:1"]);
        assert_eq!(
            resume_order(&fresh, "a:1", usize::MAX).len(),
            MAX_RESUME_ADDRS,
            "any start"
        );
        assert!(resume_order(&["a:1".to_owned()], "a:1", 3).is_empty());
        assert!(resume_order(&[], "a:1", 3).is_empty());
    }
}
