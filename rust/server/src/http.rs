//! The HTTP endpoint (axum, its own TCP port, separate from the game's QUIC port):
//!
//! - `POST /v1/login` with JSON `{"username": "...", "password": "..."}`: 200
//!   `{"token", "expires_in_s", "quic_addr", "fingerprint_sha256"}`; 401
//!   `{"error": "bad_credentials", "message"}`; 400 `{"error": "bad_request", "message"}` for
//!   a body that is not that JSON, an empty or oversized field, or a body over
//!   [`MAX_BODY_BYTES`].
//! - `GET /metrics`: Prometheus text ([`crate::metrics`]).
//! - `GET /healthz`: 200 while the process runs.
//! - `GET /readyz`: 200 while the QUIC endpoint listens and the server is not shutting down,
//!   503 otherwise.
//!
//! `quic_addr` in the login answer is the QUIC endpoint's bound address; when that is an
//! unspecified address (`0.0.0.0`, `::`), the address the HTTP request arrived on is given
//! instead, with the QUIC port, so the client gets something it can connect to.
//!
//! Handlers never touch a zone: a login only checks the account and signs a token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::connect_info::Connected;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::auth::{DevAccounts, TokenIssuer};
use crate::config::{MAX_ACCOUNT_NAME_BYTES, MAX_PASSWORD_BYTES, valid_account_name};

/// Largest request body accepted, bytes.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

/// Counter, label `outcome` (`ok`, `bad_credentials`, `bad_request`, `error`): HTTP logins.
pub const HTTP_LOGINS_TOTAL: &str = "mmo_http_logins_total";

/// What the handlers share.
#[derive(Debug)]
pub struct HttpState {
    /// Signs tokens.
    pub issuer: Arc<TokenIssuer>,
    /// Who may log in.
    pub accounts: DevAccounts,
    /// The QUIC endpoint's bound address.
    pub quic_addr: SocketAddr,
    /// Lowercase hex SHA-256 of the server certificate (64 characters).
    pub fingerprint_hex: String,
    /// True while the QUIC endpoint listens and no shutdown has begun.
    pub ready: Arc<AtomicBool>,
    /// The metrics recorder.
    pub metrics: PrometheusHandle,
}

/// A login request.
#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    /// Account name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A successful login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The token to present on the QUIC control stream.
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in_s: u64,
    /// Where to connect (`ip:port`).
    pub quic_addr: String,
    /// The certificate fingerprint to pin (64 lowercase hex characters).
    pub fingerprint_sha256: String,
}

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// `bad_credentials`, `bad_request` or `internal`.
    pub error: String,
    /// What was wrong.
    pub message: String,
}

/// The local address a connection arrived on.
#[derive(Clone, Copy, Debug)]
pub struct LocalAddr(pub Option<SocketAddr>);

impl Connected<IncomingStream<'_, TcpListener>> for LocalAddr {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        LocalAddr(stream.io().local_addr().ok())
    }
}

/// The routes over `state`.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/v1/login", post(login))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
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
        router.into_make_service_with_connect_info::<LocalAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

fn error(status: StatusCode, error: &str, message: impl Into<String>) -> Response {
    let outcome = match status {
        StatusCode::UNAUTHORIZED => "bad_credentials",
        StatusCode::BAD_REQUEST => "bad_request",
        _ => "error",
    };
    metrics::counter!(HTTP_LOGINS_TOTAL, "outcome" => outcome).increment(1);
    (
        status,
        Json(ErrorResponse {
            error: error.to_owned(),
            message: message.into(),
        }),
    )
        .into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

async fn login(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(local): ConnectInfo<LocalAddr>,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(r)) => r,
        Err(rejection) => {
            return bad_request(format!(
                "expected a JSON body {{\"username\": \"...\", \"password\": \"...\"}} of at most {MAX_BODY_BYTES} bytes: {}",
                rejection.body_text()
            ));
        }
    };
    if request.username.is_empty() || request.password.is_empty() {
        return bad_request("username and password must not be empty");
    }
    if request.username.len() > MAX_ACCOUNT_NAME_BYTES {
        return bad_request(format!(
            "username longer than {MAX_ACCOUNT_NAME_BYTES} bytes"
        ));
    }
    if request.password.len() > MAX_PASSWORD_BYTES {
        return bad_request(format!("password longer than {MAX_PASSWORD_BYTES} bytes"));
    }
    if !valid_account_name(&request.username) {
        return bad_request("username may hold only letters, digits, `_`, `-` and `.`");
    }
    if !state.accounts.check(&request.username, &request.password) {
        tracing::info!(username = %request.username, "login refused: bad credentials");
        return error(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "unknown username or wrong password",
        );
    }
    let token = match state
        .issuer
        .issue(&request.username, mmo_net::auth::unix_now_s())
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "token not issued");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string());
        }
    };
    let mut quic_addr = state.quic_addr;
    if quic_addr.ip().is_unspecified()
        && let Some(local) = local.0
    {
        quic_addr.set_ip(local.ip());
    }
    metrics::counter!(HTTP_LOGINS_TOTAL, "outcome" => "ok").increment(1);
    tracing::info!(username = %request.username, "token issued");
    Json(LoginResponse {
        token,
        expires_in_s: state.issuer.ttl_s(),
        quic_addr: quic_addr.to_string(),
        fingerprint_sha256: state.fingerprint_hex.clone(),
    })
    .into_response()
}

async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&state.metrics),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}
