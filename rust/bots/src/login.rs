//! The HTTP login of a bot: `POST /v1/login` with a username and password, answered with a
//! token, the QUIC address and the certificate fingerprint to pin.

use std::net::SocketAddr;
use std::time::Duration;

use mmo_net::tls::Fingerprint;
use serde::{Deserialize, Serialize};

/// The password every bot uses: `mmo-server`'s open-login password
/// (`mmo_server::auth::DEV_OPEN_PASSWORD`), which any username may use when the server runs
/// with `--dev-open-login`, as the spawned one does.
pub const BOT_PASSWORD: &str = "dev_password";
/// Longest wait for one login request.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Serialize)]
struct LoginRequest<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
struct LoginResponse {
    token: String,
    quic_addr: String,
    fingerprint_sha256: String,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    message: String,
}

/// What a successful login gives.
#[derive(Clone, Debug)]
pub struct Granted {
    /// The token to present on the control stream.
    pub token: String,
    /// Where the QUIC endpoint is.
    pub quic_addr: SocketAddr,
    /// The certificate to pin.
    pub fingerprint: Fingerprint,
}

/// A failed login: a reason code for the report and the detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginFailure {
    /// `login_http` (no answer), `login_refused_<status>` (an error answer), or
    /// `login_bad_response` (an answer that is not the documented JSON).
    pub code: String,
    /// What happened.
    pub message: String,
}

/// A client for logins (one per run: it pools connections).
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(LOGIN_TIMEOUT)
        .build()
        .map_err(|e| format!("http client: {e}"))
}

/// Logs `username` in at the server whose HTTP API is at `http_base` (`host:port`).
pub async fn login(
    client: &reqwest::Client,
    http_base: &str,
    username: &str,
) -> Result<Granted, LoginFailure> {
    let url = format!("http://{http_base}/v1/login");
    let response = client
        .post(&url)
        .json(&LoginRequest {
            username,
            password: BOT_PASSWORD,
        })
        .send()
        .await
        .map_err(|e| LoginFailure {
            code: "login_http".into(),
            message: format!("POST {url}: {e}"),
        })?;
    let status = response.status();
    let body = response.text().await.map_err(|e| LoginFailure {
        code: "login_http".into(),
        message: format!("POST {url}: reading the answer: {e}"),
    })?;
    if !status.is_success() {
        let detail = serde_json::from_str::<ErrorResponse>(&body)
            .map(|e| format!("{}: {}", e.error, e.message))
            .unwrap_or_else(|_| body.chars().take(200).collect());
        return Err(LoginFailure {
            code: format!("login_refused_{}", status.as_u16()),
            message: format!("POST {url}: {status}: {detail}"),
        });
    }
    parse_granted(&body).map_err(|message| LoginFailure {
        code: "login_bad_response".into(),
        message: format!("POST {url}: {message}"),
    })
}

/// Parses a 200 answer's body.
fn parse_granted(body: &str) -> Result<Granted, String> {
    let r: LoginResponse = serde_json::from_str(body)
        .map_err(|e| format!("login answer is not the expected JSON: {e}"))?;
    let quic_addr = r
        .quic_addr
        .parse()
        .map_err(|_| format!("quic_addr {:?} is not ip:port", r.quic_addr))?;
    let fingerprint = parse_fingerprint(&r.fingerprint_sha256)?;
    Ok(Granted {
        token: r.token,
        quic_addr,
        fingerprint,
    })
}

/// A SHA-256 fingerprint from 64 hex digits (either case), with mmo-net's parser.
pub fn parse_fingerprint(hex: &str) -> Result<Fingerprint, String> {
    Fingerprint::from_hex(hex).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip_through_hex() {
        let fp = Fingerprint([0xab; 32]);
        assert_eq!(parse_fingerprint(&fp.to_hex()).unwrap(), fp);
        assert_eq!(parse_fingerprint(&fp.to_hex().to_uppercase()).unwrap(), fp);
        assert!(
            parse_fingerprint("abc")
                .unwrap_err()
                .contains("64 hex digits")
        );
        assert!(
            parse_fingerprint(&"g".repeat(64))
                .unwrap_err()
                .contains("not a hex digit")
        );
    }

    #[test]
    fn the_documented_answer_parses_and_bad_ones_are_named() {
        let fp = "00".repeat(32);
        let ok = format!(
            r#"{{"token":"t","expires_in_s":900,"quic_addr":"127.0.0.1:4433","fingerprint_sha256":"{fp}"}}"#
        );
        let g = parse_granted(&ok).unwrap();
        assert_eq!(g.token, "t");
        assert_eq!(g.quic_addr.port(), 4433);
        let bad_addr = ok.replace("127.0.0.1:4433", "nowhere");
        assert!(parse_granted(&bad_addr).unwrap_err().contains("quic_addr"));
        assert!(parse_granted("{}").unwrap_err().contains("expected JSON"));
    }
}
