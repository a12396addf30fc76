//! The HTTP login of a bot: `POST /v1/login` with a username and password, answered with a
//! token, the QUIC address and the certificate fingerprint to pin. A fleet whose world is
//! full answers 202 with a place in its login queue; the bot then polls
//! `POST /v1/login/queue` as the answer says until it is let in (at most
//! [`MAX_QUEUE_WAIT`]).

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
/// Longest a bot waits in a fleet's login queue before it gives up
/// (`login_queue_timeout`).
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(120);

#[derive(Serialize)]
struct LoginRequest<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
struct LoginResponse {
    token: String,
    quic_addr: String,
    /// Absent from servers older than the field.
    #[serde(default)]
    resume_addrs: Vec<String>,
    fingerprint_sha256: String,
}

/// A 202 answer: a place in the login queue.
#[derive(Deserialize)]
struct QueuedResponse {
    ticket: String,
    poll_after_s: u64,
}

#[derive(Serialize)]
struct PollRequest<'a> {
    ticket: &'a str,
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
    /// Other gateways to resume the session at (empty outside a fleet).
    pub resume_addrs: Vec<SocketAddr>,
    /// The certificate to pin.
    pub fingerprint: Fingerprint,
    /// How long the login waited in the fleet's queue (`None`: let in at once).
    pub queued: Option<Duration>,
}

/// A failed login: a reason code for the report and the detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginFailure {
    /// `login_http` (no answer), `login_refused_<status>` (an error answer),
    /// `login_bad_response` (an answer that is not the documented JSON), or
    /// `login_queue_timeout` (queued longer than [`MAX_QUEUE_WAIT`]).
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
    let request = LoginRequest {
        username,
        password: BOT_PASSWORD,
    };
    let (mut status, mut body) = post(client, &url, &request).await?;
    let queued_at = std::time::Instant::now();
    let mut was_queued = false;
    let queue_url = format!("http://{http_base}/v1/login/queue");
    while status == reqwest::StatusCode::ACCEPTED {
        was_queued = true;
        let place: QueuedResponse = serde_json::from_str(&body).map_err(|e| LoginFailure {
            code: "login_bad_response".into(),
            message: format!("POST {url}: a 202 answer that is not a queue place: {e}"),
        })?;
        if queued_at.elapsed() >= MAX_QUEUE_WAIT {
            return Err(LoginFailure {
                code: "login_queue_timeout".into(),
                message: format!(
                    "still queued after {} s at {http_base}",
                    MAX_QUEUE_WAIT.as_secs()
                ),
            });
        }
        tokio::time::sleep(Duration::from_secs(place.poll_after_s.clamp(1, 30))).await;
        (status, body) = post(
            client,
            &queue_url,
            &PollRequest {
                ticket: &place.ticket,
            },
        )
        .await?;
    }
    if !status.is_success() {
        let detail = serde_json::from_str::<ErrorResponse>(&body)
            .map(|e| format!("{}: {}", e.error, e.message))
            .unwrap_or_else(|_| body.chars().take(200).collect());
        return Err(LoginFailure {
            code: format!("login_refused_{}", status.as_u16()),
            message: format!("POST {url}: {status}: {detail}"),
        });
    }
    let mut granted = parse_granted(&body).map_err(|message| LoginFailure {
        code: "login_bad_response".into(),
        message: format!("POST {url}: {message}"),
    })?;
    granted.queued = was_queued.then(|| queued_at.elapsed());
    Ok(granted)
}

/// POSTs `body` as JSON to `url`: the status and the answer's text.
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &impl Serialize,
) -> Result<(reqwest::StatusCode, String), LoginFailure> {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| LoginFailure {
            code: "login_http".into(),
            message: format!("POST {url}: {e}"),
        })?;
    let status = response.status();
    let text = response.text().await.map_err(|e| LoginFailure {
        code: "login_http".into(),
        message: format!("POST {url}: reading the answer: {e}"),
    })?;
    Ok((status, text))
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
    let resume_addrs = r
        .resume_addrs
        .iter()
        .map(|a| {
            a.parse()
                .map_err(|_| format!("resume_addrs entry {a:?} is not ip:port"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Granted {
        token: r.token,
        quic_addr,
        resume_addrs,
        fingerprint,
        queued: None,
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
        assert!(g.resume_addrs.is_empty(), "absent: none");
        let bad_addr = ok.replace("127.0.0.1:4433", "nowhere");
        assert!(parse_granted(&bad_addr).unwrap_err().contains("quic_addr"));
        assert!(parse_granted("{}").unwrap_err().contains("expected JSON"));
        let fleet = ok.replace(
            r#""quic_addr""#,
            r#""resume_addrs":["127.0.0.1:4434","10.0.0.2:4433"],"quic_addr""#,
        );
        let g = parse_granted(&fleet).unwrap();
        assert_eq!(
            g.resume_addrs,
            vec![
                "127.0.0.1:4434".parse::<SocketAddr>().unwrap(),
                "10.0.0.2:4433".parse().unwrap()
            ]
        );
        let bad_resume = fleet.replace("10.0.0.2:4433", "elsewhere");
        assert!(
            parse_granted(&bad_resume)
                .unwrap_err()
                .contains("resume_addrs entry \"elsewhere\"")
        );
    }
}
