//! The relay over a NATS server that requires TLS and a password per role, with
//! permissions limiting each role to its subjects (the configuration `docs/fleet.md`
//! recommends), and through a NATS outage of a second. The test starts its own `nats-server` (installed by `ci/services.sh`; the
//! test is skipped without one unless `MMO_REQUIRE_SERVICES=1`) with a certificate
//! authority and server certificate made here.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use mmo_core::session::client::{ClientConfig, ClientEvent};
use mmo_core::zone::ZoneConfig;
use mmo_net::auth::StaticTokens;
use mmo_net::client::NetClient;
use mmo_net::relay::{GatewayProcess, NatsSecurity, RelaySettings, ZoneProcess};
use mmo_net::server::ServerConfig;
use mmo_net::tls::{ServerCert, ServerTrust};
use mmo_testkit::services::installed_server;

/// A `nats-server` with TLS and two users, killed on drop.
struct SecureNats {
    child: Child,
    url: String,
    ca_file: PathBuf,
    /// How it was started (to start it again on the same port).
    binary: PathBuf,
    config_file: PathBuf,
    port: u16,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for SecureNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn start_secure_nats(binary: &Path, world: &str) -> SecureNats {
    let dir =
        std::env::temp_dir().join(format!("mmo-secure-nats-{}-{}", std::process::id(), world));
    std::fs::create_dir_all(&dir).unwrap();
    // A certificate authority and a server certificate for 127.0.0.1 signed by it.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();
    let ca_file = dir.join("ca.pem");
    write(&ca_file, &ca.pem());
    write(&dir.join("server.pem"), &server.pem());
    write(&dir.join("server.key"), &server_key.serialize_pem());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        r#"
listen: "127.0.0.1:{port}"
tls {{
  cert_file: "{dir}/server.pem"
  key_file: "{dir}/server.key"
  timeout: 2
}}
authorization {{
  users = [
    {{ user: "gateway", password: "gateway-secret", permissions: {{
        publish: ["mmo.{world}.zone.>", "mmo.{world}.zproc.>"],
        subscribe: ["mmo.{world}.gw.>"] }} }}
    {{ user: "zone", password: "zone-secret", permissions: {{
        publish: ["mmo.{world}.gw.>", "mmo.{world}.peer.>"],
        subscribe: ["mmo.{world}.zone.>", "mmo.{world}.zproc.>", "mmo.{world}.peer.>"] }} }}
  ]
}}
"#,
        dir = dir.display()
    );
    let config_file = dir.join("nats.conf");
    write(&config_file, &config);
    let child = spawn_nats(binary, &config_file, port);
    SecureNats {
        child,
        binary: binary.to_owned(),
        config_file,
        port,
        url: format!("tls://127.0.0.1:{port}"),
        ca_file,
        _dir: tempdir::Dir(dir),
    }
}

/// Starts `nats-server -c config_file` and waits until it accepts TCP on `port`.
fn spawn_nats(binary: &Path, config_file: &Path, port: u16) -> Child {
    let child = Command::new(binary)
        .arg("-c")
        .arg(config_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

impl SecureNats {
    /// Kills the server (an outage) and starts it again on the same port after `down`.
    fn restart_after(&mut self, down: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        self.child = spawn_nats(&self.binary, &self.config_file, self.port);
    }
}

fn settings(nats: &SecureNats, world: &str, user: &str, password: &str) -> RelaySettings {
    RelaySettings {
        nats_url: nats.url.clone(),
        world: world.to_owned(),
        redis_url: None,
        nats_security: Some(NatsSecurity {
            user: Some(user.to_owned()),
            password: Some(password.to_owned()),
            ca_file: Some(nats.ca_file.clone()),
        }),
        zones: None,
        take_free_zone: false,
        shard_cap: None,
        shard_merge_after: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_works_over_tls_with_a_user_per_role_and_refuses_the_rest() {
    let Some(binary) = installed_server("nats-server") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(40), async {
        common::install_recorder();
        let world = "secure";
        let mut nats = start_secure_nats(&binary, world);
        let cert = ServerCert::self_signed(&["localhost"]).unwrap();
        let trust = ServerTrust::Pinned(cert.fingerprint());
        let config = ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            ZoneConfig::default(),
            cert,
            std::sync::Arc::new(StaticTokens::new().with("a", "alice")),
        );

        // A wrong password and a connection without TLS are refused, with the reason.
        let wrong = GatewayProcess::start(&config, settings(&nats, world, "gateway", "guess"))
            .await
            .unwrap_err()
            .to_string();
        assert!(wrong.to_lowercase().contains("authorization"), "{wrong}");
        let mut plain = settings(&nats, world, "gateway", "gateway-secret");
        plain.nats_url = nats.url.replace("tls://", "nats://");
        plain.nats_security = Some(NatsSecurity {
            ca_file: None,
            ..plain.nats_security.clone().unwrap()
        });
        assert!(
            GatewayProcess::start(&config, plain).await.is_err(),
            "a connection that does not check the server's certificate is refused"
        );

        // Each role with its own user: a player plays through the gateway.
        let zones = ZoneProcess::start(&config, settings(&nats, world, "zone", "zone-secret"))
            .await
            .unwrap();
        let gateway =
            GatewayProcess::start(&config, settings(&nats, world, "gateway", "gateway-secret"))
                .await
                .unwrap();
        let mut client = NetClient::connect(
            gateway.local_addr(),
            "localhost",
            trust,
            ClientConfig::default(),
            "a",
        )
        .await
        .unwrap();
        let welcome = common::wait_event(&mut client, Duration::from_secs(10), |e| {
            matches!(e, ClientEvent::Welcome { .. })
        })
        .await;
        assert!(welcome.is_some(), "welcomed through the secured relay");

        // A NATS outage of a second: both processes reconnect and the session goes on
        // (75 snapshots: more than the NATS clients buffer while they reconnect).
        client.pump();
        while client.poll_event().is_some() {}
        let before = client.session().stats().snapshots_applied;
        nats.restart_after(Duration::from_secs(1));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
        while tokio::time::Instant::now() < deadline
            && client.session().stats().snapshots_applied < before + 75
        {
            client.pump();
            while client.poll_event().is_some() {}
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            client.session().stats().snapshots_applied >= before + 75,
            "snapshots flow again after the outage: {} -> {}",
            before,
            client.session().stats().snapshots_applied
        );
        assert_eq!(
            client.state(),
            mmo_core::session::client::ClientState::Active,
            "the client stayed connected through the outage"
        );

        // Permissions: the gateway's user cannot read what gateways send to zones; the
        // zone's user can.
        let connect = |user: &str, password: &str| {
            async_nats::ConnectOptions::new()
                .user_and_password(user.to_owned(), password.to_owned())
                .add_root_certificates(nats.ca_file.clone())
                .require_tls(true)
                .connect(nats.url.clone())
        };
        let as_gateway = connect("gateway", "gateway-secret").await.unwrap();
        let as_zone = connect("zone", "zone-secret").await.unwrap();
        let subject = format!("mmo.{world}.zone.77");
        let mut spy = as_gateway.subscribe(subject.clone()).await.unwrap();
        let mut allowed = as_zone.subscribe(subject.clone()).await.unwrap();
        as_gateway.flush().await.unwrap();
        as_zone.flush().await.unwrap();
        // Published again every half second for up to 5 s: a probe sent while a client
        // still settles after the outage above may be lost (core NATS is at most once).
        let mut got = false;
        for _ in 0..10 {
            as_gateway
                .publish(subject.clone(), "probe".into())
                .await
                .unwrap();
            as_gateway.flush().await.unwrap();
            if let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(500), allowed.next()).await
            {
                got = true;
                break;
            }
        }
        assert!(got, "the zone's user receives it");
        let spied = tokio::time::timeout(Duration::from_millis(500), spy.next()).await;
        assert!(
            !matches!(spied, Ok(Some(_))),
            "the gateway's user may not subscribe to zone subjects"
        );
        client.disconnect(Duration::from_secs(1)).await;
        gateway.shutdown(Duration::from_secs(1)).await;
        zones.shutdown(Duration::from_secs(2)).await;
    })
    .await
    .expect("finished within 40 s");
}
