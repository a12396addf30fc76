//! The HTTP endpoint (axum, its own TCP port, separate from the game's QUIC port). JSON in
//! and out; every error is `{"error": "<kind>", "message": "..."}` with a message naming
//! the problem (and `retry_after_s` for `rate_limited`, with a `Retry-After` header). A body
//! that is not the expected JSON or is over [`MAX_BODY_BYTES`] is 400 `bad_request`.
//!
//! Accounts ([`crate::accounts`]):
//! - `POST /v1/accounts {username, password}`: 201 `{account_id, username}`; 409
//!   `name_taken`; 400 `bad_request`; 403 `registration_closed`; 429 `rate_limited`.
//! - `POST /v1/login {username, password}`: 200 [`LoginResponse`] (`token`, `expires_in_s`,
//!   `refresh_token`, `refresh_expires_in_s`, `quic_addr`, `fingerprint_sha256`); 401
//!   `bad_credentials`; 429 `rate_limited`; 503 `unavailable` (database down). Counted in
//!   [`HTTP_LOGINS_TOTAL`] by outcome (`ok` or the error kind).
//! - `POST /v1/token/refresh {refresh_token}`: 200 like login, with the rotated refresh
//!   token; 401 `refresh_token_expired` / `refresh_token_revoked` / `refresh_token_unknown`.
//! - `POST /v1/logout {refresh_token}`: 204 (the token is revoked; an unknown one too).
//! - At a gateway of a fleet ([`crate::fleet_login`]): login, refresh and character session
//!   name the least loaded gateway in `quic_addr`, or answer 202 `queued` when the world
//!   is full; `POST /v1/login/queue {ticket}` polls (200 with a token, 202, 404
//!   `ticket_unknown`, 503 `unavailable`).
//!
//! Characters, with `Authorization: Bearer <access token>` (401 `bad_token` with the
//! [`JwtAuthority`]'s message when missing, expired or forged):
//! - `GET /v1/characters`: `{"characters": [CharacterJson...]}`.
//! - `POST /v1/characters {name, class, race}`: 201 [`CharacterJson`]; 409 `name_taken` /
//!   `character_limit`; 400 `bad_name` / `unknown_class` / `unknown_race` (checked against
//!   the content).
//! - `DELETE /v1/characters/{id}`: 204; 404 `not_found` (also for another account's
//!   character: its existence is not revealed).
//! - `POST /v1/characters/{id}/session`: 200 [`SessionResponse`] (a token with claim `chr`);
//!   404 `not_found` for a character not of this account. The ownership is checked here
//!   against the account's character list (read pool: with a lagging replica a character
//!   created a moment ago may be `not_found` for that moment); the zone checks it again
//!   when it loads the character for the QUIC login.
//!
//! Operations: `GET /metrics` (Prometheus text, [`crate::metrics`]), `GET /healthz` (200
//! while the process runs), `GET /readyz` (200 while the QUIC endpoint listens and the
//! server is not shutting down, 503 otherwise).
//!
//! `quic_addr` in the answers is the QUIC endpoint's bound address; when that is an
//! unspecified address (`0.0.0.0`, `::`), the address the HTTP request arrived on is given
//! instead, with the QUIC port, so the client gets something it can connect to.
//!
//! Handlers never touch a zone: they check accounts, use the store and sign tokens.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::connect_info::Connected;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::serve::IncomingStream;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use mmo_core::gameplay::content::Content;
use mmo_core::persist::valid_character_name;
use mmo_net::auth::LoginAuthority;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::accounts::{AccountError, Accounts, Session};
use crate::auth::{JwtAuthority, TokenIssuer};
use crate::storage::StoreError;
use crate::storage::characters::{CharacterSummary, NewCharacter};

/// Largest request body accepted, bytes.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

/// Counter, label `outcome` (`ok`, `bad_credentials`, `bad_request`, `rate_limited`,
/// `unavailable`, `internal`): HTTP logins (`POST /v1/login`).
pub const HTTP_LOGINS_TOTAL: &str = "mmo_http_logins_total";

/// What the handlers share.
#[derive(Debug)]
pub struct HttpState {
    /// Signs tokens.
    pub issuer: Arc<TokenIssuer>,
    /// Checks the bearer tokens of the character endpoints (same secret as `issuer`).
    pub authority: Arc<JwtAuthority>,
    /// Accounts, passwords, refresh tokens, rate limits; holds the store.
    pub accounts: Arc<Accounts>,
    /// The content new characters' classes and races are checked against.
    pub content: Arc<Content>,
    /// What a new character starts with (zone, position, facing, inventory); its name,
    /// class and race are replaced by the request's.
    pub new_character: NewCharacter,
    /// Where new characters start (placed by their name).
    pub spawn: crate::spawn_area::SpawnArea,
    /// The QUIC endpoint's bound address.
    pub quic_addr: SocketAddr,
    /// Lowercase hex SHA-256 of the server certificate (64 characters).
    pub fingerprint_hex: String,
    /// Readiness and metrics (the routes every role serves).
    pub ops: Arc<OpsState>,
    /// A gateway of a fleet with a directory: placement and the login queue
    /// ([`crate::fleet_login`]); `None`: every login connects here.
    pub fleet: Option<Arc<crate::fleet_login::FleetLogin>>,
}

/// What the operations routes (`/metrics`, `/healthz`, `/readyz`) need: every role serves
/// them, the zone role nothing else.
#[derive(Debug)]
pub struct OpsState {
    /// True while the process serves (its QUIC endpoint or its zones run) and no shutdown
    /// has begun.
    pub ready: Arc<AtomicBool>,
    /// The metrics recorder.
    pub metrics: PrometheusHandle,
}

/// A login or registration request.
#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    /// Account name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A request carrying a refresh token (refresh, logout).
#[derive(Debug, Deserialize)]
pub struct RefreshRequest {
    /// The refresh token's text.
    pub refresh_token: String,
}

/// A character creation request.
#[derive(Debug, Deserialize)]
pub struct CreateCharacterRequest {
    /// Name ([`valid_character_name`]).
    pub name: String,
    /// Content id of the class.
    pub class: String,
    /// Content id of the race.
    pub race: String,
}

/// A successful login or refresh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The token to present on the QUIC control stream (no `chr`: the default character).
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in_s: u64,
    /// The refresh token (spend it at `/v1/token/refresh`; shown once).
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in_s: u64,
    /// Where to connect (`ip:port`).
    pub quic_addr: String,
    /// Other gateways of the fleet (`ip:port`, at most 4; empty outside a fleet): where
    /// to resume the session if `quic_addr` falls silent (`RELAY_FORMAT.md` section 8).
    pub resume_addrs: Vec<String>,
    /// The certificate fingerprint to pin (64 lowercase hex characters).
    pub fingerprint_sha256: String,
}

/// A created account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountResponse {
    /// Its id.
    pub account_id: u64,
    /// Its name.
    pub username: String,
}

/// A token bound to one character.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResponse {
    /// The token (claim `chr` = the character).
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in_s: u64,
    /// Where to connect (`ip:port`).
    pub quic_addr: String,
    /// As in [`LoginResponse`].
    pub resume_addrs: Vec<String>,
    /// The certificate fingerprint to pin (64 lowercase hex characters).
    pub fingerprint_sha256: String,
}

/// One character in a list or a creation answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharacterJson {
    /// Database id.
    pub character_id: u64,
    /// Name.
    pub name: String,
    /// Content id of the race.
    pub race: String,
    /// Content id of the class.
    pub class: String,
    /// Level.
    pub level: u32,
    /// Zone it was last saved in.
    pub zone_id: u16,
}

impl From<CharacterSummary> for CharacterJson {
    fn from(c: CharacterSummary) -> Self {
        CharacterJson {
            character_id: c.character_id,
            name: c.name,
            race: c.race,
            class: c.class,
            level: c.level,
            zone_id: c.zone_id,
        }
    }
}

/// An account's characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharacterList {
    /// By id.
    pub characters: Vec<CharacterJson>,
}

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The kind (`bad_credentials`, `bad_request`, `rate_limited`, ...; see the module docs).
    pub error: String,
    /// What was wrong.
    pub message: String,
    /// For `rate_limited`: seconds until trying again may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

/// The addresses of a connection: the local one it arrived on and the peer's.
#[derive(Clone, Copy, Debug)]
pub struct ConnAddrs {
    /// Where the connection arrived.
    pub local: Option<SocketAddr>,
    /// Where it came from (the per-address rate limit's key).
    pub peer: Option<SocketAddr>,
}

impl Connected<IncomingStream<'_, TcpListener>> for ConnAddrs {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        ConnAddrs {
            local: stream.io().local_addr().ok(),
            peer: stream.io().peer_addr().ok(),
        }
    }
}

/// The routes over `state`.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/v1/accounts", post(register))
        .route("/v1/login", post(login))
        .route("/v1/login/queue", post(crate::fleet_login::poll_queue))
        .route("/v1/token/refresh", post(refresh))
        .route("/v1/logout", post(logout))
        .route(
            "/v1/characters",
            get(list_characters).post(create_character),
        )
        .route("/v1/characters/{id}", delete(delete_character))
        .route("/v1/characters/{id}/session", post(character_session))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state.clone())
        .merge(ops_router(state.ops.clone()))
}

/// The operations routes alone: `/metrics`, `/healthz`, `/readyz` (what a zone process
/// serves: players log in at a gateway).
pub fn ops_router(ops: Arc<OpsState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ops)
}

/// Serves `router` on `listener` until `shutdown` resolves (then finishes the requests in
/// flight).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<ConnAddrs>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

pub(crate) fn error(status: StatusCode, error: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorResponse {
            error: error.to_owned(),
            message: message.into(),
            retry_after_s: None,
        }),
    )
        .into_response()
}

/// The message of a 503 `unavailable` answer (the detail goes to the log only).
pub const UNAVAILABLE_MESSAGE: &str = "the account database is unavailable; try again later";
/// The message of a 500 `internal` answer (the detail goes to the log only).
pub const INTERNAL_MESSAGE: &str = "internal server error; the server log has the details";

/// The answer for `e` from the request `route` (of `account`, when known). Database and
/// internal failures are logged with their detail and answered with a generic message:
/// their text (e.g. PostgreSQL's) never reaches the client.
fn account_error(e: &AccountError, route: &'static str, account: Option<&str>) -> Response {
    let status = match e {
        AccountError::BadRequest(_) => StatusCode::BAD_REQUEST,
        AccountError::NameTaken(_) => StatusCode::CONFLICT,
        AccountError::RegistrationClosed => StatusCode::FORBIDDEN,
        AccountError::BadCredentials
        | AccountError::RefreshExpired
        | AccountError::RefreshRevoked
        | AccountError::RefreshUnknown => StatusCode::UNAUTHORIZED,
        AccountError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AccountError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AccountError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = match e {
        AccountError::Unavailable(m) => {
            tracing::warn!(error = %m, route, account, "account request failed: database unavailable");
            UNAVAILABLE_MESSAGE.to_owned()
        }
        AccountError::Internal(m) => {
            tracing::error!(error = %m, route, account, "account request failed");
            INTERNAL_MESSAGE.to_owned()
        }
        _ => e.to_string(),
    };
    let retry_after_s = match e {
        AccountError::RateLimited { retry_after_s, .. } => Some(*retry_after_s),
        _ => None,
    };
    let mut response = (
        status,
        Json(ErrorResponse {
            error: e.kind().to_owned(),
            message,
            retry_after_s,
        }),
    )
        .into_response();
    if let Some(s) = retry_after_s {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    response
}

/// The answer for a store failure of the request `route` (of `account`, when known): the
/// detail is logged, the client gets 503 `unavailable` or 500 `internal` with a generic
/// message. (Conflicts a client should see are answered by the handlers before this.)
fn store_error(e: &StoreError, route: &'static str, account: Option<&str>) -> Response {
    if e.is_retryable() {
        tracing::warn!(error = %e, route, account, "database unavailable");
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            UNAVAILABLE_MESSAGE,
        )
    } else {
        tracing::error!(error = %e, kind = e.kind(), route, account, "store failed");
        internal()
    }
}

/// The 500 `internal` answer (log the detail first).
pub(crate) fn internal() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        INTERNAL_MESSAGE,
    )
}

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// An answer ending a handler early (boxed: a `Response` is large).
pub(crate) type Early = Box<Response>;

/// The JSON body, or the 400 answer naming `expected`.
pub(crate) fn json_body<T: DeserializeOwned>(
    body: Result<Json<T>, JsonRejection>,
    expected: &str,
) -> Result<T, Early> {
    body.map(|Json(t)| t).map_err(|rejection| {
        Box::new(bad_request(format!(
            "expected a JSON body {expected} of at most {MAX_BODY_BYTES} bytes: {}",
            rejection.body_text()
        )))
    })
}

const CREDENTIALS_BODY: &str = r#"{"username": "...", "password": "..."}"#;
const REFRESH_BODY: &str = r#"{"refresh_token": "..."}"#;

/// The QUIC address to give a client whose request arrived on `local`.
fn client_quic_addr(state: &HttpState, local: Option<SocketAddr>) -> String {
    let mut quic_addr = state.quic_addr;
    if quic_addr.ip().is_unspecified()
        && let Some(local) = local
    {
        quic_addr.set_ip(local.ip());
    }
    quic_addr.to_string()
}

/// `chosen` (a gateway's registry address) or this server's QUIC address, as a client
/// whose request arrived on `local` can use it.
fn quic_addr_for(state: &HttpState, chosen: Option<&str>, local: Option<SocketAddr>) -> String {
    match chosen {
        Some(address) => crate::fleet_login::reachable(address, local),
        None => client_quic_addr(state, local),
    }
}

/// Where a login connects: its gateway, and the others it can resume at.
pub(crate) struct Placed {
    pub(crate) quic_addr: String,
    pub(crate) resume_addrs: Vec<String>,
}

impl Placed {
    /// A fleet's placement on `chosen` (`None`: this gateway), as a client whose request
    /// arrived on `local` can use it.
    pub(crate) fn in_fleet(
        state: &HttpState,
        fleet: &crate::fleet_login::FleetLogin,
        chosen: Option<&str>,
        local: Option<SocketAddr>,
    ) -> Placed {
        let quic_addr = quic_addr_for(state, chosen, local);
        Placed {
            resume_addrs: fleet.resume_addrs(&quic_addr, local),
            quic_addr,
        }
    }
}

/// Where a login whose credentials were checked connects, or its 202 queued answer (with
/// `refresh`, the request's refresh token and its lifetime).
async fn place(
    state: &HttpState,
    who: crate::login_queue::QueuedLogin,
    local: Option<SocketAddr>,
    refresh: Option<(String, u64)>,
) -> Result<Placed, Response> {
    let Some(fleet) = &state.fleet else {
        return Ok(Placed {
            quic_addr: client_quic_addr(state, local),
            resume_addrs: Vec::new(),
        });
    };
    match fleet.place(&who).await {
        crate::fleet_login::Placement::Connect(chosen) => {
            Ok(Placed::in_fleet(state, fleet, chosen.as_deref(), local))
        }
        crate::fleet_login::Placement::Queued(waiting) => {
            Err(crate::fleet_login::QueuedResponse::answer(waiting, refresh))
        }
    }
}

/// The login answer for `session`: a fresh access token and its refresh token, or the
/// queued answer when the fleet is full.
async fn session_response(
    state: &HttpState,
    session: Session,
    local: Option<SocketAddr>,
) -> Response {
    let who = crate::login_queue::QueuedLogin {
        account: session.name.clone(),
        character_id: None,
    };
    let refresh = Some((session.refresh_token.clone(), session.refresh_expires_in_s));
    let placed = match place(state, who, local, refresh).await {
        Ok(placed) => placed,
        Err(queued) => return queued,
    };
    let token = match state
        .issuer
        .issue(&session.name, mmo_net::auth::unix_now_s())
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, account = %session.name, "token not issued");
            return internal();
        }
    };
    Json(LoginResponse {
        token,
        expires_in_s: state.issuer.ttl_s(),
        refresh_token: session.refresh_token,
        refresh_expires_in_s: session.refresh_expires_in_s,
        quic_addr: placed.quic_addr,
        resume_addrs: placed.resume_addrs,
        fingerprint_sha256: state.fingerprint_hex.clone(),
    })
    .into_response()
}

async fn register(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(addrs): ConnectInfo<ConnAddrs>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Response {
    let request = match json_body(body, CREDENTIALS_BODY) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    match state
        .accounts
        .register(
            &request.username,
            &request.password,
            addrs.peer.map(|a| a.ip()),
            mmo_net::auth::unix_now_s(),
        )
        .await
    {
        Ok(account_id) => (
            StatusCode::CREATED,
            Json(AccountResponse {
                account_id,
                username: request.username,
            }),
        )
            .into_response(),
        Err(e) => account_error(&e, "POST /v1/accounts", Some(&request.username)),
    }
}

async fn login(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(addrs): ConnectInfo<ConnAddrs>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Response {
    let request = match json_body(body, CREDENTIALS_BODY) {
        Ok(r) => r,
        Err(response) => {
            metrics::counter!(HTTP_LOGINS_TOTAL, "outcome" => "bad_request").increment(1);
            return *response;
        }
    };
    let result = state
        .accounts
        .login(
            &request.username,
            &request.password,
            addrs.peer.map(|a| a.ip()),
            mmo_net::auth::unix_now_s(),
        )
        .await;
    match result {
        Ok(session) => {
            metrics::counter!(HTTP_LOGINS_TOTAL, "outcome" => "ok").increment(1);
            tracing::info!(username = %request.username, "login");
            session_response(&state, session, addrs.local).await
        }
        Err(e) => {
            metrics::counter!(HTTP_LOGINS_TOTAL, "outcome" => e.kind()).increment(1);
            tracing::info!(username = %request.username, reason = e.kind(), "login refused");
            account_error(&e, "POST /v1/login", Some(&request.username))
        }
    }
}

async fn refresh(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(addrs): ConnectInfo<ConnAddrs>,
    body: Result<Json<RefreshRequest>, JsonRejection>,
) -> Response {
    let request = match json_body(body, REFRESH_BODY) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    match state
        .accounts
        .refresh(&request.refresh_token, mmo_net::auth::unix_now_s())
        .await
    {
        Ok(session) => session_response(&state, session, addrs.local).await,
        Err(e) => account_error(&e, "POST /v1/token/refresh", None),
    }
}

async fn logout(
    State(state): State<Arc<HttpState>>,
    body: Result<Json<RefreshRequest>, JsonRejection>,
) -> Response {
    let request = match json_body(body, REFRESH_BODY) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    match state.accounts.logout(&request.refresh_token).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => account_error(&e, "POST /v1/logout", None),
    }
}

/// The account an access token names: a handler taking this extractor answers 401 (no,
/// malformed, expired or forged token; an account that no longer exists) or 503 (store
/// down) before it runs.
struct Authed {
    /// Account name.
    account: String,
    /// Its database id.
    account_id: u64,
}

impl FromRequestParts<Arc<HttpState>> for Authed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<HttpState>,
    ) -> Result<Self, Response> {
        let bad_token = |message: String| error(StatusCode::UNAUTHORIZED, "bad_token", message);
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(bad_token(
                "no `Authorization: Bearer <access token>` header".into(),
            ));
        };
        let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
            return Err(bad_token(
                "the Authorization header is not `Bearer <access token>`".into(),
            ));
        };
        let grant = state
            .authority
            .verify(token.trim(), mmo_net::auth::unix_now_s())
            .map_err(|refusal| bad_token(refusal.message))?;
        match state.accounts.store().account_by_name(&grant.account).await {
            Ok(Some(row)) => Ok(Authed {
                account: row.name,
                account_id: row.account_id,
            }),
            Ok(None) => Err(bad_token(format!(
                "account `{}` does not exist",
                grant.account
            ))),
            Err(e) => Err(store_error(&e, "bearer token check", Some(&grant.account))),
        }
    }
}

/// The `{id}` of a character route; anything but a positive integer answers 400 naming
/// the problem.
struct CharacterIdPath(u64);

impl FromRequestParts<Arc<HttpState>> for CharacterIdPath {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<HttpState>,
    ) -> Result<Self, Response> {
        match Path::<u64>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(CharacterIdPath(id)),
            Err(rejection) => Err(bad_request(format!(
                "the character id in the path must be a positive integer: {}",
                rejection.body_text()
            ))),
        }
    }
}

fn not_found(id: u64) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("this account has no character {id}"),
    )
}

async fn list_characters(
    State(state): State<Arc<HttpState>>,
    Authed {
        account,
        account_id,
    }: Authed,
) -> Response {
    match state.accounts.store().list_characters(account_id).await {
        Ok(list) => Json(CharacterList {
            characters: list.into_iter().map(CharacterJson::from).collect(),
        })
        .into_response(),
        Err(e) => store_error(&e, "GET /v1/characters", Some(&account)),
    }
}

async fn create_character(
    State(state): State<Arc<HttpState>>,
    Authed {
        account,
        account_id,
    }: Authed,
    body: Result<Json<CreateCharacterRequest>, JsonRejection>,
) -> Response {
    let request = match json_body(body, r#"{"name": "...", "class": "...", "race": "..."}"#) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    if !valid_character_name(&request.name) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_name",
            format!(
                "a character name is 2..={} ASCII letters and digits starting with a letter",
                mmo_core::persist::MAX_CHARACTER_NAME_BYTES
            ),
        );
    }
    if state.content.class_id(&request.class).is_none() {
        let known: Vec<&str> = state
            .content
            .classes()
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        return error(
            StatusCode::BAD_REQUEST,
            "unknown_class",
            format!("no class `{}` (known: {})", request.class, known.join(", ")),
        );
    }
    if state.content.race_id(&request.race).is_none() {
        let known: Vec<&str> = state
            .content
            .races()
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        return error(
            StatusCode::BAD_REQUEST,
            "unknown_race",
            format!("no race `{}` (known: {})", request.race, known.join(", ")),
        );
    }
    let mut new = NewCharacter {
        name: request.name,
        class: request.class,
        race: request.race,
        ..state.new_character.clone()
    };
    let key = new.name.clone();
    state.spawn.place(&mut new, &key);
    let max = state.accounts.settings().max_characters_per_account;
    match state
        .accounts
        .store()
        .create_character(account_id, &new, max, mmo_net::auth::unix_now_s())
        .await
    {
        Ok(record) => {
            tracing::info!(%account, character_id = record.character_id, name = %record.name, "character created");
            (
                StatusCode::CREATED,
                Json(CharacterJson {
                    character_id: record.character_id,
                    name: record.name,
                    race: record.race,
                    class: record.class,
                    level: record.level,
                    zone_id: record.zone_id,
                }),
            )
                .into_response()
        }
        Err(StoreError::Conflict(m)) => error(StatusCode::CONFLICT, "name_taken", m),
        Err(StoreError::LimitReached(_)) => error(
            StatusCode::CONFLICT,
            "character_limit",
            format!("an account may have at most {max} characters"),
        ),
        Err(e) => store_error(&e, "POST /v1/characters", Some(&account)),
    }
}

async fn delete_character(
    State(state): State<Arc<HttpState>>,
    Authed {
        account,
        account_id,
    }: Authed,
    CharacterIdPath(id): CharacterIdPath,
) -> Response {
    match state
        .accounts
        .store()
        .delete_character(account_id, id)
        .await
    {
        Ok(true) => {
            tracing::info!(%account, character_id = id, "character deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => not_found(id),
        Err(e) => store_error(&e, "DELETE /v1/characters/{id}", Some(&account)),
    }
}

async fn character_session(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(addrs): ConnectInfo<ConnAddrs>,
    Authed {
        account,
        account_id,
    }: Authed,
    CharacterIdPath(id): CharacterIdPath,
) -> Response {
    match state.accounts.store().list_characters(account_id).await {
        Ok(list) if list.iter().any(|c| c.character_id == id) => {}
        Ok(_) => return not_found(id),
        Err(e) => return store_error(&e, "POST /v1/characters/{id}/session", Some(&account)),
    }
    let who = crate::login_queue::QueuedLogin {
        account: account.clone(),
        character_id: Some(id),
    };
    let placed = match place(&state, who, addrs.local, None).await {
        Ok(placed) => placed,
        Err(queued) => return queued,
    };
    match state
        .issuer
        .issue_for_character(&account, id, mmo_net::auth::unix_now_s())
    {
        Ok(token) => Json(SessionResponse {
            token,
            expires_in_s: state.issuer.ttl_s(),
            quic_addr: placed.quic_addr,
            resume_addrs: placed.resume_addrs,
            fingerprint_sha256: state.fingerprint_hex.clone(),
        })
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, %account, character_id = id, "token not issued");
            internal()
        }
    }
}

async fn metrics(State(state): State<Arc<OpsState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&state.metrics),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<OpsState>>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> (StatusCode, serde_json::Value) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("an in-memory body");
        (status, serde_json::from_slice(&bytes).expect("a JSON body"))
    }

    #[tokio::test]
    async fn database_errors_are_answered_without_their_detail() {
        let secret = "relation \"accounts\" does not exist at 10.1.2.3";
        let cases = [
            (
                store_error(
                    &StoreError::Unavailable(secret.into()),
                    "GET /v1/characters",
                    Some("alice"),
                ),
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                UNAVAILABLE_MESSAGE,
            ),
            (
                store_error(&StoreError::Corrupt(secret.into()), "test", None),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                INTERNAL_MESSAGE,
            ),
            (
                account_error(
                    &AccountError::from(StoreError::Unavailable(secret.into())),
                    "POST /v1/login",
                    Some("alice"),
                ),
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                UNAVAILABLE_MESSAGE,
            ),
            (
                account_error(&AccountError::Internal(secret.into()), "test", None),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                INTERNAL_MESSAGE,
            ),
        ];
        for (response, status, kind, message) in cases {
            let (got_status, body) = body_of(response).await;
            assert_eq!(got_status, status);
            assert_eq!(body["error"], kind);
            assert_eq!(body["message"], message);
            assert!(!body.to_string().contains("10.1.2.3"), "{body}");
        }
        // Messages meant for the user are kept.
        let (status, body) = body_of(account_error(
            &AccountError::NameTaken("account name `alice` is taken".into()),
            "POST /v1/accounts",
            Some("alice"),
        ))
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["message"], "account name `alice` is taken");
    }
}
