//! Accounts over real HTTP on 127.0.0.1 (axum) with a real store, on SQLite and on
//! PostgreSQL: registration, login, refresh token rotation and reuse detection, logout,
//! bearer tokens (expired, forged), characters per account (create, list, delete, the
//! session token bound to one character, another account's character refused), the login
//! rate limits per account and per address, a login burst, and the database going away.
//!
//! PostgreSQL runs when `MMO_TEST_POSTGRES_URL` is set (each test run makes its own
//! database and drops it); without it the PostgreSQL test prints `skipped` unless
//! `MMO_REQUIRE_SERVICES=1`, which makes it fail. argon2 runs at 64 KiB / 1 iteration here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use mmo_core::gameplay::content::Content;
use mmo_net::auth::{LoginAuthority, unix_now_s};
use mmo_server::accounts::{Accounts, LoginLimiter};
use mmo_server::auth::{Claims, DevAccounts, ISSUER, JwtAuthority, TokenIssuer};
use mmo_server::config::DevAccount;
use mmo_server::http::{
    AccountResponse, CharacterJson, CharacterList, ErrorResponse, HttpState, LoginResponse,
    OpsState, SessionResponse,
};
use mmo_server::service_settings::AccountSettings;
use mmo_server::storage::Store;
use mmo_server::storage::characters::NewCharacter;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;
use tokio::sync::oneshot;

const SECRET: &[u8] = b"accounts test secret, 32+ bytes long";

/// Cheap argon2 and generous limits; each scenario narrows what it tests.
fn settings() -> AccountSettings {
    AccountSettings {
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        argon2_parallelism: 1,
        failed_logins_per_account_per_min: 100,
        logins_per_address_per_min: 10_000,
        max_characters_per_account: 2,
        ..AccountSettings::default()
    }
}

/// One HTTP server over a store, stopped on drop.
struct Server {
    base: String,
    quic_addr: SocketAddr,
    issuer: TokenIssuer,
    http: reqwest::Client,
    content: Arc<Content>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn server(store: &Store, settings: AccountSettings, limiter: LoginLimiter) -> Server {
    let content = Arc::new(Content::default_content().unwrap());
    let dev = DevAccounts::new(
        &[DevAccount {
            name: "devuser".into(),
            password: "devpass".into(),
        }],
        false,
    );
    let accounts = Accounts::new(store.clone(), settings, dev, limiter).unwrap();
    let quic_addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
    let state = Arc::new(HttpState {
        issuer: Arc::new(TokenIssuer::new(SECRET, 900)),
        authority: Arc::new(JwtAuthority::new(SECRET)),
        accounts: Arc::new(accounts),
        content: content.clone(),
        new_character: NewCharacter {
            name: String::new(),
            race: content.races()[0].id.clone(),
            class: content.classes()[0].id.clone(),
            zone_id: 0,
            position_m: glam::Vec3::new(1.0, 0.0, 2.0),
            yaw_rad: 0.5,
            inventory: Vec::new(),
        },
        spawn: mmo_server::spawn_area::SpawnArea::at_point(glam::Vec3::new(1.0, 0.0, 2.0)),
        quic_addr,
        fingerprint_hex: "ab".repeat(32),
        ops: Arc::new(OpsState {
            ready: Arc::new(AtomicBool::new(true)),
            metrics: mmo_server::metrics::global(),
        }),
        fleet: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(mmo_server::http::serve(
        listener,
        mmo_server::http::router(state),
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        base: format!("http://{addr}"),
        quic_addr,
        issuer: TokenIssuer::new(SECRET, 900),
        http: reqwest::Client::new(),
        content,
        stop: Some(stop),
    }
}

/// A default limiter of `settings` but with a window of `window`.
fn limiter(settings: &AccountSettings, window: Duration) -> LoginLimiter {
    LoginLimiter::new(
        settings.failed_logins_per_account_per_min,
        settings.logins_per_address_per_min,
        window,
        1_000,
    )
}

impl Server {
    async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn register(&self, name: &str, password: &str) -> reqwest::Response {
        self.post(
            "/v1/accounts",
            json!({"username": name, "password": password}),
        )
        .await
    }

    async fn login(&self, name: &str, password: &str) -> reqwest::Response {
        self.post("/v1/login", json!({"username": name, "password": password}))
            .await
    }

    async fn login_ok(&self, name: &str, password: &str) -> LoginResponse {
        let response = self.login(name, password).await;
        assert_eq!(response.status(), StatusCode::OK, "login of {name}");
        response.json().await.unwrap()
    }

    async fn refresh(&self, token: &str) -> reqwest::Response {
        self.post("/v1/token/refresh", json!({"refresh_token": token}))
            .await
    }
}

async fn expect_error(
    response: reqwest::Response,
    status: StatusCode,
    kind: &str,
) -> ErrorResponse {
    assert_eq!(response.status(), status, "expected {kind}");
    let body: ErrorResponse = response.json().await.unwrap();
    assert_eq!(body.error, kind, "{body:?}");
    assert!(!body.message.is_empty());
    body
}

/// A unique suffix for names, so scenarios sharing a store do not collide.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{tag}{nanos}")
}

async fn register_login_refresh_logout(store: &Store) {
    let s = server(
        store,
        settings(),
        limiter(&settings(), Duration::from_secs(60)),
    )
    .await;
    let alice = unique("alice");
    let response = s.register(&alice, "correct horse").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: AccountResponse = response.json().await.unwrap();
    assert_eq!(created.username, alice);
    assert!(created.account_id > 0);
    expect_error(
        s.register(&alice, "another pw").await,
        StatusCode::CONFLICT,
        "name_taken",
    )
    .await;
    let short = expect_error(
        s.register(&unique("bob"), "short").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert!(short.message.contains("8..=128"), "{}", short.message);
    expect_error(
        s.register("bad name!", "long enough").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;

    // Wrong password, unknown user.
    expect_error(
        s.login(&alice, "wrong horse").await,
        StatusCode::UNAUTHORIZED,
        "bad_credentials",
    )
    .await;
    expect_error(
        s.login(&unique("nobody"), "correct horse").await,
        StatusCode::UNAUTHORIZED,
        "bad_credentials",
    )
    .await;

    let login = s.login_ok(&alice, "correct horse").await;
    assert_eq!(login.expires_in_s, 900);
    assert_eq!(login.refresh_expires_in_s, settings().refresh_token_ttl_s);
    assert_eq!(login.quic_addr, s.quic_addr.to_string());
    assert!(
        login.resume_addrs.is_empty(),
        "no other gateway to resume at"
    );
    assert_eq!(login.refresh_token.len(), 43);
    let grant = JwtAuthority::new(SECRET)
        .verify(&login.token, unix_now_s())
        .unwrap();
    assert_eq!(
        (grant.account.as_str(), grant.character_id),
        (alice.as_str(), None)
    );

    // Rotation: a new refresh token, the old one spent.
    let response = s.refresh(&login.refresh_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: LoginResponse = response.json().await.unwrap();
    assert_ne!(rotated.refresh_token, login.refresh_token);
    assert_eq!(
        JwtAuthority::new(SECRET)
            .verify(&rotated.token, unix_now_s())
            .unwrap()
            .account,
        alice
    );
    let rotated_again: LoginResponse = s
        .refresh(&rotated.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    // Reuse of a spent token: refused, and the live successor is revoked with it.
    expect_error(
        s.refresh(&rotated.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_revoked",
    )
    .await;
    expect_error(
        s.refresh(&rotated_again.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_revoked",
    )
    .await;

    // Two uses of one token at once: exactly one rotates it; the other is a reuse.
    let login = s.login_ok(&alice, "correct horse").await;
    let (a, b) = tokio::join!(
        s.refresh(&login.refresh_token),
        s.refresh(&login.refresh_token)
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::UNAUTHORIZED]);
    let winner: LoginResponse = if a.status() == StatusCode::OK {
        a.json().await.unwrap()
    } else {
        b.json().await.unwrap()
    };
    expect_error(
        s.refresh(&winner.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_revoked",
    )
    .await;

    // Logout revokes.
    let login = s.login_ok(&alice, "correct horse").await;
    let response = s
        .post("/v1/logout", json!({"refresh_token": login.refresh_token}))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_error(
        s.refresh(&login.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_revoked",
    )
    .await;

    // Unknown and expired tokens.
    expect_error(
        s.refresh("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_unknown",
    )
    .await;
    expect_error(
        s.refresh("garbage").await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_unknown",
    )
    .await;
    let (expired, digest) = mmo_server::accounts::new_refresh_token();
    let now = unix_now_s();
    store
        .insert_refresh_token(created.account_id, &digest, now - 10, now - 100)
        .await
        .unwrap();
    expect_error(
        s.refresh(&expired).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_expired",
    )
    .await;

    // Development accounts still log in, get a row and refresh tokens.
    let dev = s.login_ok("devuser", "devpass").await;
    let response = s.refresh(&dev.refresh_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    expect_error(
        s.login("devuser", "wrong").await,
        StatusCode::UNAUTHORIZED,
        "bad_credentials",
    )
    .await;

    // Registration closed.
    let closed = server(
        store,
        AccountSettings {
            registration_open: false,
            ..settings()
        },
        limiter(&settings(), Duration::from_secs(60)),
    )
    .await;
    expect_error(
        closed.register(&unique("carol"), "long enough").await,
        StatusCode::FORBIDDEN,
        "registration_closed",
    )
    .await;
}

async fn characters_and_tokens(store: &Store) {
    let s = server(
        store,
        settings(),
        limiter(&settings(), Duration::from_secs(60)),
    )
    .await;
    let alice = unique("ca");
    let bob = unique("cb");
    for name in [&alice, &bob] {
        assert_eq!(
            s.register(name, "password1").await.status(),
            StatusCode::CREATED
        );
    }
    let alice_token = s.login_ok(&alice, "password1").await.token;
    let bob_token = s.login_ok(&bob, "password1").await.token;
    let class = s.content.classes()[0].id.clone();
    let race = s.content.races()[0].id.clone();
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let del = reqwest::Method::DELETE;

    // Missing, expired and forged tokens.
    let response = s
        .http
        .get(format!("{}/v1/characters", s.base))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED, "bad_token").await;
    let now = unix_now_s();
    let expired = s
        .issuer
        .issue_claims(&Claims {
            sub: alice.clone(),
            iat: now - 2_000,
            exp: now - 1_000,
            iss: ISSUER.into(),
            chr: None,
        })
        .unwrap();
    let body = expect_error(
        s.authed(get.clone(), "/v1/characters", &expired, None)
            .await,
        StatusCode::UNAUTHORIZED,
        "bad_token",
    )
    .await;
    assert!(body.message.contains("expired"), "{}", body.message);
    let forged = TokenIssuer::new(b"some other secret of 32 bytes...", 900)
        .issue(&alice, now)
        .unwrap();
    let body = expect_error(
        s.authed(get.clone(), "/v1/characters", &forged, None).await,
        StatusCode::UNAUTHORIZED,
        "bad_token",
    )
    .await;
    assert!(body.message.contains("signature"), "{}", body.message);

    // Create, with each refusal.
    let name = unique("Hero");
    let create = |name: String, class: String, race: String| json!({"name": name, "class": class, "race": race});
    let response = s
        .authed(
            post.clone(),
            "/v1/characters",
            &alice_token,
            Some(create(name.clone(), class.clone(), race.clone())),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let hero: CharacterJson = response.json().await.unwrap();
    assert_eq!((hero.name.as_str(), hero.level), (name.as_str(), 1));
    for (body, kind) in [
        (create("x".into(), class.clone(), race.clone()), "bad_name"),
        (
            create(unique("Ok"), "no_such_class".into(), race.clone()),
            "unknown_class",
        ),
        (
            create(unique("Ok"), class.clone(), "no_such_race".into()),
            "unknown_race",
        ),
    ] {
        expect_error(
            s.authed(post.clone(), "/v1/characters", &alice_token, Some(body))
                .await,
            StatusCode::BAD_REQUEST,
            kind,
        )
        .await;
    }
    // Names are unique across accounts.
    expect_error(
        s.authed(
            post.clone(),
            "/v1/characters",
            &bob_token,
            Some(create(name.clone(), class.clone(), race.clone())),
        )
        .await,
        StatusCode::CONFLICT,
        "name_taken",
    )
    .await;
    let second = s
        .authed(
            post.clone(),
            "/v1/characters",
            &alice_token,
            Some(create(unique("Second"), class.clone(), race.clone())),
        )
        .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let second: CharacterJson = second.json().await.unwrap();
    expect_error(
        s.authed(
            post.clone(),
            "/v1/characters",
            &alice_token,
            Some(create(unique("Third"), class.clone(), race.clone())),
        )
        .await,
        StatusCode::CONFLICT,
        "character_limit",
    )
    .await;

    // Lists are per account.
    let list: CharacterList = s
        .authed(get.clone(), "/v1/characters", &alice_token, None)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<u64> = list.characters.iter().map(|c| c.character_id).collect();
    assert_eq!(ids, [hero.character_id, second.character_id]);
    let list: CharacterList = s
        .authed(get.clone(), "/v1/characters", &bob_token, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(list.characters.is_empty());

    // Bob can neither bind nor delete Alice's character, nor learn that it exists.
    let session_path = format!("/v1/characters/{}/session", hero.character_id);
    let delete_path = format!("/v1/characters/{}", hero.character_id);
    let foreign = expect_error(
        s.authed(post.clone(), &session_path, &bob_token, None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let missing = expect_error(
        s.authed(
            post.clone(),
            "/v1/characters/999999999/session",
            &bob_token,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        foreign.message.replace(&hero.character_id.to_string(), "N"),
        missing.message.replace("999999999", "N")
    );
    expect_error(
        s.authed(del.clone(), &delete_path, &bob_token, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Alice's session token binds her character.
    let response = s
        .authed(post.clone(), &session_path, &alice_token, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let session: SessionResponse = response.json().await.unwrap();
    assert_eq!(session.quic_addr, s.quic_addr.to_string());
    let grant = JwtAuthority::new(SECRET)
        .verify(&session.token, unix_now_s())
        .unwrap();
    assert_eq!(grant.account, alice);
    assert_eq!(grant.character_id, Some(hero.character_id));
    // A token naming Bob with Alice's character (as a client might forge with a stolen
    // id) carries Bob's account: the zone's load refuses it by ownership.
    let bob_with_alices = s
        .issuer
        .issue_for_character(&bob, hero.character_id, unix_now_s())
        .unwrap();
    let grant = JwtAuthority::new(SECRET)
        .verify(&bob_with_alices, unix_now_s())
        .unwrap();
    assert_eq!(
        (grant.account.as_str(), grant.character_id),
        (bob.as_str(), Some(hero.character_id))
    );

    // Delete.
    let response = s
        .authed(del.clone(), &delete_path, &alice_token, None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_error(
        s.authed(del.clone(), &delete_path, &alice_token, None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        s.authed(del.clone(), "/v1/characters/abc", &alice_token, None)
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    // The name is free again.
    let response = s
        .authed(
            post.clone(),
            "/v1/characters",
            &bob_token,
            Some(create(name.clone(), class.clone(), race.clone())),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn rate_limits(store: &Store) {
    // Per account: 3 failures per 2 s window.
    let narrow = AccountSettings {
        failed_logins_per_account_per_min: 3,
        ..settings()
    };
    let s = server(
        store,
        narrow.clone(),
        limiter(&narrow, Duration::from_secs(2)),
    )
    .await;
    let victim = unique("victim");
    assert_eq!(
        s.register(&victim, "right password").await.status(),
        StatusCode::CREATED
    );
    for _ in 0..3 {
        expect_error(
            s.login(&victim, "guess").await,
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
        )
        .await;
    }
    let response = s.login(&victim, "right password").await;
    let retry_header: u64 = response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = expect_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(body.retry_after_s, Some(retry_header));
    assert!((1..=2).contains(&retry_header), "{retry_header}");
    assert!(body.message.contains("account"), "{}", body.message);
    // Other accounts are not affected.
    let other = unique("other");
    assert_eq!(
        s.register(&other, "right password").await.status(),
        StatusCode::CREATED
    );
    s.login_ok(&other, "right password").await;
    // After the window the right password works again.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    s.login_ok(&victim, "right password").await;

    // Per address: 4 attempts per window, whatever their outcome.
    let narrow = AccountSettings {
        logins_per_address_per_min: 4,
        ..settings()
    };
    let s = server(
        store,
        narrow.clone(),
        limiter(&narrow, Duration::from_secs(60)),
    )
    .await;
    s.login_ok("devuser", "devpass").await;
    for _ in 0..3 {
        expect_error(
            s.login(&unique("x"), "whatever pw").await,
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
        )
        .await;
    }
    let body = expect_error(
        s.login("devuser", "devpass").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    assert!(body.message.contains("address"), "{}", body.message);
    assert!(body.retry_after_s.unwrap() > 50);
    let metrics = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mmo_http_logins_total{outcome=\"rate_limited\"}"),
        "{metrics}"
    );
}

async fn login_burst(store: &Store) {
    let s = Arc::new(
        server(
            store,
            settings(),
            limiter(&settings(), Duration::from_secs(60)),
        )
        .await,
    );
    let name = unique("burst");
    assert_eq!(
        s.register(&name, "burst password").await.status(),
        StatusCode::CREATED
    );
    let logins: Vec<_> = (0..50)
        .map(|_| {
            let s = s.clone();
            let name = name.clone();
            tokio::spawn(async move { s.login(&name, "burst password").await.status() })
        })
        .collect();
    for login in logins {
        assert_eq!(login.await.unwrap(), StatusCode::OK);
    }
}

async fn database_down(store: &Store) {
    let s = server(
        store,
        settings(),
        limiter(&settings(), Duration::from_secs(60)),
    )
    .await;
    let token = s.login_ok("devuser", "devpass").await.token;
    store.close().await;
    // The database's own error text stays in the log; the client gets a generic message.
    let generic = mmo_server::http::UNAVAILABLE_MESSAGE;
    let body = expect_error(
        s.login("devuser", "devpass").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert_eq!(body.message, generic);
    let body = expect_error(
        s.authed(reqwest::Method::GET, "/v1/characters", &token, None)
            .await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert_eq!(body.message, generic);
}

async fn all_scenarios(store: &Store) {
    register_login_refresh_logout(store).await;
    characters_and_tokens(store).await;
    rate_limits(store).await;
    login_burst(store).await;
    database_down(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_on_sqlite() {
    let dir = std::env::temp_dir().join(format!(
        "mmo-accounts-test-{}-{}",
        std::process::id(),
        unique("")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&Store::sqlite_url_in(&dir), None, 4)
        .await
        .unwrap();
    all_scenarios(&store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `MMO_TEST_POSTGRES_URL`, or `None` after printing `skipped` (a panic when services are
/// required).
fn postgres_url() -> Option<String> {
    match std::env::var("MMO_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("MMO_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("skipped: MMO_TEST_POSTGRES_URL not set")
        }
        _ => {
            println!("skipped: MMO_TEST_POSTGRES_URL not set");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_on_postgres() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let database = format!("mmo_t_accounts_{}_{}", std::process::id(), unique(""));
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    // The name is made here of a fixed prefix and digits.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (server_url, _) = admin_url
        .rsplit_once('/')
        .expect("MMO_TEST_POSTGRES_URL ends with /<database>");
    let url = format!("{server_url}/{database}");
    let store = Store::open(&url, None, 8).await.unwrap();
    all_scenarios(&store).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {database} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}
