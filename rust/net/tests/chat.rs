//! Chat over real QUIC on 127.0.0.1, one server with two zones: say reaches the near player
//! and not the far one, zone stays in its zone, global reaches every zone, a whisper finds
//! its recipient by name in another zone, a whisper to nobody is refused, leaving global
//! stops delivery and joining restores it, say cannot be left, flooding is rate limited
//! then muted, and an operator mute refuses lines; both mutes outlive the connection (a
//! duplicate login and a reconnect are still refused `chat_muted`).

mod common;

use std::time::Duration;

use common::player::Player;
use common::{border_world, connect_player, pinned_config, zone_of};
use mmo_core::chat::ChatConfig;
use mmo_core::control::{ChatChannel, ChatRefusalKind};
use mmo_core::entity::EntityId;
use mmo_core::input::{Buttons, MoveInput};
use mmo_core::session::client::ClientEvent;
use mmo_core::world::{WorldLayout, ZoneId};
use mmo_net::auth::StaticTokens;
use mmo_net::server::Server;

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

/// A chat line as a client saw it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    from_name: String,
    from_entity: EntityId,
    channel: ChatChannel,
    text: String,
}

fn chats(p: &Player) -> Vec<Seen> {
    p.events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Chat {
                from_name,
                from_entity,
                channel,
                text,
            } => Some(Seen {
                from_name: from_name.clone(),
                from_entity: *from_entity,
                channel: *channel,
                text: text.clone(),
            }),
            _ => None,
        })
        .collect()
}

fn heard(p: &Player, text: &str) -> Option<Seen> {
    chats(p).into_iter().find(|s| s.text == text)
}

fn refusals(p: &Player) -> Vec<ChatRefusalKind> {
    p.events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::ChatRefused { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect()
}

struct World {
    server: Server,
    players: Vec<Player>,
    tick: Duration,
}

impl World {
    /// Ticks every player (A with `a_input`) until `done` holds or 5 s pass.
    async fn run_until(&mut self, a_input: MoveInput, done: impl Fn(&[Player]) -> bool) -> bool {
        let tick_s = self.tick.as_secs_f32();
        for _ in 0..(5.0 / tick_s) as u32 {
            tokio::time::sleep(self.tick).await;
            for (i, p) in self.players.iter_mut().enumerate() {
                p.tick(
                    if i == A {
                        a_input
                    } else {
                        MoveInput::default()
                    },
                    tick_s,
                );
            }
            if done(&self.players) {
                return true;
            }
        }
        false
    }

    async fn idle_until(&mut self, done: impl Fn(&[Player]) -> bool) -> bool {
        self.run_until(MoveInput::default(), done).await
    }

    /// Idles for about half a second (lines that should not arrive had time to).
    async fn settle(&mut self) {
        let ticks = (0.5 / self.tick.as_secs_f32()) as u32;
        for _ in 0..ticks {
            self.idle_until(|_| true).await;
        }
    }

    fn send(&mut self, who: usize, channel: ChatChannel, to: Option<&str>, text: &str) {
        self.players[who]
            .client
            .session_mut()
            .send_chat(channel, to, text)
            .expect("sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_channels_limits_and_mutes() {
    tokio::time::timeout(Duration::from_secs(60), run())
        .await
        .expect("finished within 60 s");
}

async fn run() {
    // 200 m x 100 m cut at x = 0; players appear 4 m west of the border, in zone 0.
    let (world, zone) = border_world();
    let (mut config, trust) = pinned_config(
        &zone,
        StaticTokens::new()
            .with("a", "alice")
            .with("b", "bob")
            .with("c", "carol"),
    );
    config.layout = Some(WorldLayout::new(world, 2, 1, 30.0).unwrap());
    config.chat = ChatConfig {
        say_radius_m: 5.0,
        burst_lines: 5,
        lines_per_min: 1,
        mute_after_limited: 2,
        mute_s: 600,
    };
    let server = Server::start(config).await.unwrap();
    let mut players = Vec::new();
    for token in ["a", "b", "c"] {
        players.push(connect_player(&server, trust, &zone, token).await);
    }
    let mut w = World {
        server,
        players,
        tick: Duration::from_micros(zone.tick_rate.tick_us()),
    };
    assert!(
        w.idle_until(|ps| ps.iter().all(|p| p.entity().is_some()))
            .await,
        "all welcomed"
    );
    let b_entity = w.players[B].entity().unwrap();

    // A walks +X for 4 s (about 15 m) into zone 1, then stops.
    let walk = MoveInput::from_controls(1.0, 0.0, 0.0, Buttons::default());
    w.run_until(walk, |ps| ps[A].position_m().x > 10.0).await;
    w.settle().await;
    let a_entity = w.players[A].entity().unwrap();
    assert_eq!(zone_of(&w.server, a_entity).await, Some(ZoneId(1)));
    assert_eq!(zone_of(&w.server, b_entity).await, Some(ZoneId(0)));

    // Say: B's line reaches C (standing next to B) and B, not A (far away).
    w.send(B, ChatChannel::Say, None, "near");
    assert!(w.idle_until(|ps| heard(&ps[C], "near").is_some()).await);
    let seen = heard(&w.players[C], "near").unwrap();
    assert_eq!(
        seen,
        Seen {
            from_name: "bob".into(),
            from_entity: b_entity,
            channel: ChatChannel::Say,
            text: "near".into()
        }
    );
    // Zone: B's line reaches C in zone 0, not A in zone 1.
    w.send(B, ChatChannel::Zone, None, "zone line");
    assert!(
        w.idle_until(|ps| heard(&ps[C], "zone line").is_some())
            .await
    );
    w.settle().await;
    assert!(
        heard(&w.players[A], "near").is_none(),
        "say is not heard 15 m away"
    );
    assert!(
        heard(&w.players[A], "zone line").is_none(),
        "zone stays in zone 0"
    );
    assert!(
        heard(&w.players[B], "near").is_some(),
        "the speaker hears its own say"
    );

    // Global: A's line reaches B and C in the other zone (no entity: another zone).
    w.send(A, ChatChannel::Global, None, "global line");
    assert!(
        w.idle_until(|ps| ps.iter().all(|p| heard(p, "global line").is_some()))
            .await
    );
    let seen = heard(&w.players[B], "global line").unwrap();
    assert_eq!(seen.from_name, "alice");
    assert_eq!(seen.from_entity, EntityId(0));
    assert_eq!(seen.channel, ChatChannel::Global);

    // Whisper by name to A in the other zone; to nobody: refused.
    w.send(C, ChatChannel::Whisper, Some("alice"), "psst");
    assert!(w.idle_until(|ps| heard(&ps[A], "psst").is_some()).await);
    assert_eq!(heard(&w.players[A], "psst").unwrap().from_name, "carol");
    w.send(C, ChatChannel::Whisper, Some("nobody"), "hello?");
    assert!(
        w.idle_until(|ps| refusals(&ps[C]).contains(&ChatRefusalKind::UnknownRecipient))
            .await
    );
    assert!(
        heard(&w.players[B], "psst").is_none(),
        "a whisper reaches one player"
    );

    // B leaves global: A's next global line reaches C only; B joins again and hears.
    w.players[B]
        .client
        .session_mut()
        .leave_channel(ChatChannel::Global)
        .unwrap();
    w.idle_until(|_| true).await;
    w.send(A, ChatChannel::Global, None, "while away");
    assert!(
        w.idle_until(|ps| heard(&ps[C], "while away").is_some())
            .await
    );
    w.settle().await;
    assert!(heard(&w.players[B], "while away").is_none(), "left global");
    w.players[B]
        .client
        .session_mut()
        .join_channel(ChatChannel::Global)
        .unwrap();
    w.idle_until(|_| true).await;
    w.send(A, ChatChannel::Global, None, "welcome back");
    assert!(
        w.idle_until(|ps| heard(&ps[B], "welcome back").is_some())
            .await
    );
    // Say cannot be left.
    w.players[B]
        .client
        .session_mut()
        .leave_channel(ChatChannel::Say)
        .unwrap();
    assert!(
        w.idle_until(|ps| refusals(&ps[B]).contains(&ChatRefusalKind::CannotLeave))
            .await
    );

    // B has sent 2 of its burst of 5: 3 more pass, then rate limited, then muted.
    for i in 0..6 {
        w.send(B, ChatChannel::Zone, None, &format!("flood {i}"));
    }
    assert!(
        w.idle_until(|ps| refusals(&ps[B]).contains(&ChatRefusalKind::Muted))
            .await
    );
    let kinds = refusals(&w.players[B]);
    assert_eq!(
        kinds,
        [
            ChatRefusalKind::CannotLeave,
            ChatRefusalKind::RateLimited,
            ChatRefusalKind::Muted,
            ChatRefusalKind::Muted
        ]
    );
    assert!(w.idle_until(|ps| heard(&ps[C], "flood 2").is_some()).await);
    w.settle().await;
    assert!(heard(&w.players[C], "flood 3").is_none());

    // An operator mute refuses C's next line.
    let until_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 60_000;
    assert!(w.server.chat().mute("carol", until_ms));
    assert!(!w.server.chat().mute("nobody", until_ms));
    w.send(C, ChatChannel::Global, None, "muted line");
    assert!(
        w.idle_until(|ps| refusals(&ps[C]).contains(&ChatRefusalKind::Muted))
            .await
    );
    w.settle().await;
    assert!(heard(&w.players[A], "muted line").is_none());
    let mut names = w.server.chat().online_names();
    names.sort();
    assert_eq!(names, ["alice", "bob", "carol"]);

    // The mutes outlive the connection. B (muted for flooding) logs in again while online:
    // the new connection takes over the old one's state.
    w.players[B] = connect_player(&w.server, trust, &zone, "b").await;
    assert!(w.idle_until(|ps| ps[B].entity().is_some()).await);
    w.send(B, ChatChannel::Zone, None, "after relogin");
    assert!(
        w.idle_until(|ps| refusals(&ps[B]).contains(&ChatRefusalKind::Muted))
            .await
    );
    // C (muted by the operator) disconnects, is gone, and connects again.
    let old_c = w.players.pop().expect("three players");
    old_c.client.disconnect(Duration::from_millis(200)).await;
    let mut gone = false;
    for _ in 0..100 {
        w.idle_until(|_| true).await;
        if !w.server.chat().online_names().contains(&"carol".to_owned()) {
            gone = true;
            break;
        }
    }
    assert!(gone, "carol went offline");
    assert!(w.server.chat().remembered_count() >= 1);
    w.players
        .push(connect_player(&w.server, trust, &zone, "c").await);
    assert!(w.idle_until(|ps| ps[C].entity().is_some()).await);
    w.send(C, ChatChannel::Global, None, "after reconnect");
    assert!(
        w.idle_until(|ps| refusals(&ps[C]).contains(&ChatRefusalKind::Muted))
            .await
    );
    w.settle().await;
    assert!(heard(&w.players[A], "after relogin").is_none());
    assert!(heard(&w.players[A], "after reconnect").is_none());
    assert_eq!(
        w.server.chat().remembered_count(),
        1,
        "carol's state was taken back; only the muted `nobody` is left"
    );
    w.server.shutdown(Duration::from_secs(1)).await;
}
