//! The [`ChatBridge`] over Redis: zone, global and whisper lines cross server processes
//! through pub/sub, and the characters online in each process are kept as presence keys so
//! a whisper finds its recipient anywhere (or is refused `chat_unknown_recipient`).
//!
//! Channels (`<prefix>` is `mmo` unless a test isolates itself): `<prefix>:chat:global`,
//! `<prefix>:chat:zone:<zone instance>` (a zone's shard: `k × zones + z` for shard `k` of
//! zone `z`, the zone id for shard 0; `mmo_net::shard`), `<prefix>:chat:whisper`; each message is the JSON
//! `{"server": <server id>, "line": ChatLine}`, and a process ignores its own. Presence:
//! `<prefix>:presence:<name>` -> server id, with a TTL refreshed every third of it, so a
//! crashed process's players vanish on their own.
//!
//! Nothing here blocks a zone thread: [`ChatBridge::publish`] and
//! [`ChatBridge::presence`] queue (bounded; a full queue drops with a warning and a count)
//! for a publisher task. When Redis is down both tasks log an error and reconnect with
//! backoff (0.1 s doubling to 5 s); meanwhile chat is in-process only: remote lines are
//! dropped (counted), and a whisper to a name not online here is refused. Both tasks stop
//! once the server's chat hub is gone.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use mmo_core::chat::ChatLine;
use mmo_core::control::ChatChannel;
use mmo_net::chat::{ChatBridge, ChatInbound, unknown_recipient};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Lines and presence changes waiting for the publisher.
const QUEUE_CAPACITY: usize = 4096;

/// Counter of chat messages not carried to Redis, labelled `reason`.
pub const CHAT_BRIDGE_DROPPED_TOTAL: &str = "mmo_chat_bridge_dropped_total";

/// Where and as whom the bridge talks to Redis.
#[derive(Clone, Debug)]
pub struct RedisChatConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// This process's id (unique among the processes sharing the Redis).
    pub server_id: String,
    /// Key and channel prefix (`mmo`).
    pub prefix: String,
    /// Lifetime of a presence key, seconds (refreshed every third of it).
    pub presence_ttl_s: u64,
}

impl RedisChatConfig {
    /// Defaults around `url`: prefix `mmo`, a random server id, presence TTL 30 s.
    #[must_use]
    pub fn new(url: &str) -> Self {
        RedisChatConfig {
            url: url.to_owned(),
            server_id: format!("srv-{:016x}", rand::random::<u64>()),
            prefix: "mmo".to_owned(),
            presence_ttl_s: 30,
        }
    }
}

/// The chat rules of the `[chat]` settings.
#[must_use]
pub fn chat_config(settings: &crate::service_settings::ChatSettings) -> mmo_core::chat::ChatConfig {
    mmo_core::chat::ChatConfig {
        say_radius_m: settings.say_radius_m,
        burst_lines: settings.burst_lines,
        lines_per_min: settings.lines_per_min,
        mute_after_limited: settings.mute_after_limited,
        mute_s: settings.mute_s,
    }
}

/// The bridge the `[chat]` settings ask for: Redis when `redis_url` is set (keys and
/// channels under `redis_prefix`), else `None` (in-process chat). Call within the runtime.
pub fn bridge_from_settings(
    settings: &crate::service_settings::ChatSettings,
) -> Result<Option<Arc<dyn ChatBridge>>, String> {
    let Some(url) = &settings.redis_url else {
        return Ok(None);
    };
    let mut config = RedisChatConfig::new(url);
    config.prefix.clone_from(&settings.redis_prefix);
    tracing::info!(server_id = %config.server_id, prefix = %config.prefix, "chat crosses processes through Redis");
    let bridge: Arc<dyn ChatBridge> = RedisChatBridge::new(config)?;
    Ok(Some(bridge))
}

/// What travels on the pub/sub channels.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    server: String,
    line: ChatLine,
}

#[derive(Debug)]
enum Out {
    Line(ChatLine),
    Presence(String, bool),
}

/// The Redis chat bridge. Construct it with [`RedisChatBridge::new`] inside a tokio
/// runtime and pass it as `ServerConfig::chat_bridge`; its tasks start when the server
/// attaches it.
#[derive(Debug)]
pub struct RedisChatBridge {
    config: RedisChatConfig,
    client: redis::Client,
    runtime: tokio::runtime::Handle,
    queue: mpsc::Sender<Out>,
    /// Taken by `attach`.
    queue_rx: std::sync::Mutex<Option<mpsc::Receiver<Out>>>,
    inbound: OnceLock<ChatInbound>,
}

impl RedisChatBridge {
    /// A bridge to `config.url` (not connected yet). Errors: the URL does not parse.
    /// Must be called within a tokio runtime (its tasks run there).
    pub fn new(config: RedisChatConfig) -> Result<Arc<Self>, String> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| format!("chat.redis_url `{}`: {e}", config.url))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "the Redis chat bridge needs a tokio runtime".to_owned())?;
        let (queue, queue_rx) = mpsc::channel(QUEUE_CAPACITY);
        Ok(Arc::new(RedisChatBridge {
            config,
            client,
            runtime,
            queue,
            queue_rx: std::sync::Mutex::new(Some(queue_rx)),
            inbound: OnceLock::new(),
        }))
    }

    fn enqueue(&self, out: Out) {
        if self.queue.try_send(out).is_err() {
            tracing::warn!("chat bridge queue full: a chat message is not carried to Redis");
            metrics::counter!(CHAT_BRIDGE_DROPPED_TOTAL, "reason" => "queue_full").increment(1);
        }
    }
}

impl ChatBridge for RedisChatBridge {
    fn attach(&self, inbound: ChatInbound) {
        let Some(queue_rx) = self
            .queue_rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            tracing::error!("the Redis chat bridge is attached to a second server: ignored");
            return;
        };
        let _ = self.inbound.set(inbound.clone());
        let names = Names::new(&self.config.prefix);
        self.runtime.spawn(publisher(
            self.client.clone(),
            self.config.clone(),
            names.clone(),
            inbound.clone(),
            queue_rx,
        ));
        self.runtime.spawn(subscriber(
            self.client.clone(),
            self.config.server_id.clone(),
            names,
            inbound,
        ));
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn publish(&self, line: &ChatLine) {
        self.enqueue(Out::Line(line.clone()));
    }

    fn presence(&self, name: &str, online: bool) {
        self.enqueue(Out::Presence(name.to_owned(), online));
    }
}

/// Key and channel names under a prefix.
#[derive(Clone, Debug)]
struct Names {
    prefix: String,
}

impl Names {
    fn new(prefix: &str) -> Self {
        Names {
            prefix: prefix.to_owned(),
        }
    }
    fn channel(&self, line: &ChatLine) -> Option<String> {
        match line.channel {
            ChatChannel::Global => Some(format!("{}:chat:global", self.prefix)),
            ChatChannel::Zone => Some(format!("{}:chat:zone:{}", self.prefix, line.zone_id)),
            ChatChannel::Whisper => Some(format!("{}:chat:whisper", self.prefix)),
            ChatChannel::Say => None,
        }
    }
    fn presence(&self, name: &str) -> String {
        format!("{}:presence:{name}", self.prefix)
    }
}

/// Reconnect delays: 0.1 s doubling to 5 s.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::from_millis(100))
    }
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

/// Publishes queued lines and presence, refreshes presence keys; reconnects on errors.
async fn publisher(
    client: redis::Client,
    config: RedisChatConfig,
    names: Names,
    inbound: ChatInbound,
    mut queue: mpsc::Receiver<Out>,
) {
    let refresh = Duration::from_secs((config.presence_ttl_s / 3).max(1));
    let mut backoff = Backoff::new();
    'connect: while !inbound.is_closed() {
        let mut conn = match client.get_multiplexed_async_connection().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "chat: Redis unreachable; chat is in-process only until it is back");
                // Meanwhile, drain the queue: whispers to names not here are refused.
                while let Ok(out) = queue.try_recv() {
                    drop_offline(&inbound, out);
                }
                backoff.wait().await;
                continue;
            }
        };
        tracing::info!("chat: publishing to Redis");
        backoff = Backoff::new();
        // Everyone online here, at once (the keys may have expired while Redis was away).
        if let Err(e) = refresh_presence(&mut conn, &config, &names, &inbound).await {
            tracing::error!(error = %e, "chat: Redis presence refresh failed");
            continue 'connect;
        }
        let mut ticker = tokio::time::interval(refresh);
        loop {
            let out = tokio::select! {
                out = queue.recv() => match out {
                    Some(out) => out,
                    None => return,
                },
                _ = ticker.tick() => {
                    if inbound.is_closed() {
                        return;
                    }
                    if let Err(e) = refresh_presence(&mut conn, &config, &names, &inbound).await {
                        tracing::error!(error = %e, "chat: Redis presence refresh failed; reconnecting");
                        continue 'connect;
                    }
                    continue;
                }
            };
            if let Err(e) = send(&mut conn, &config, &names, &inbound, &out).await {
                tracing::error!(error = %e, "chat: Redis publish failed; reconnecting");
                drop_offline(&inbound, out);
                continue 'connect;
            }
        }
    }
}

/// What happens to a message that cannot reach Redis.
fn drop_offline(inbound: &ChatInbound, out: Out) {
    if let Out::Line(line) = out {
        metrics::counter!(CHAT_BRIDGE_DROPPED_TOTAL, "reason" => "redis_down").increment(1);
        if line.channel == ChatChannel::Whisper {
            let to = line.to.as_deref().unwrap_or("");
            inbound.refuse(&line.from_name, unknown_recipient(to));
        }
    }
}

async fn send(
    conn: &mut redis::aio::MultiplexedConnection,
    config: &RedisChatConfig,
    names: &Names,
    inbound: &ChatInbound,
    out: &Out,
) -> redis::RedisResult<()> {
    match out {
        Out::Line(line) => {
            let Some(channel) = names.channel(line) else {
                return Ok(());
            };
            if line.channel == ChatChannel::Whisper {
                let to = line.to.as_deref().unwrap_or("");
                let online: bool = redis::cmd("EXISTS")
                    .arg(names.presence(to))
                    .query_async(conn)
                    .await?;
                if !online {
                    inbound.refuse(&line.from_name, unknown_recipient(to));
                    return Ok(());
                }
            }
            let payload = serde_json::to_string(&Envelope {
                server: config.server_id.clone(),
                line: line.clone(),
            })
            .map_err(|e| {
                redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "chat line not serialisable",
                    e.to_string(),
                ))
            })?;
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query_async::<i64>(conn)
                .await?;
        }
        Out::Presence(name, true) => {
            redis::cmd("SET")
                .arg(names.presence(name))
                .arg(&config.server_id)
                .arg("EX")
                .arg(config.presence_ttl_s)
                .query_async::<()>(conn)
                .await?;
        }
        Out::Presence(name, false) => {
            // Only our own key: the name may have logged in on another process since.
            let key = names.presence(name);
            let owner: Option<String> = redis::cmd("GET").arg(&key).query_async(conn).await?;
            if owner.as_deref() == Some(config.server_id.as_str()) && !inbound.is_online(name) {
                redis::cmd("DEL").arg(&key).query_async::<i64>(conn).await?;
            }
        }
    }
    Ok(())
}

async fn refresh_presence(
    conn: &mut redis::aio::MultiplexedConnection,
    config: &RedisChatConfig,
    names: &Names,
    inbound: &ChatInbound,
) -> redis::RedisResult<()> {
    let online = inbound.online_names();
    if online.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for name in &online {
        pipe.cmd("SET")
            .arg(names.presence(name))
            .arg(&config.server_id)
            .arg("EX")
            .arg(config.presence_ttl_s)
            .ignore();
    }
    pipe.query_async::<()>(conn).await
}

/// Receives other processes' lines and hands them to the hub; reconnects on errors.
async fn subscriber(client: redis::Client, server_id: String, names: Names, inbound: ChatInbound) {
    let mut backoff = Backoff::new();
    while !inbound.is_closed() {
        let mut pubsub = match subscribe(&client, &names).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "chat: Redis subscribe failed; chat from other processes is lost until it is back");
                backoff.wait().await;
                continue;
            }
        };
        tracing::info!("chat: subscribed to Redis");
        backoff = Backoff::new();
        let mut messages = pubsub.on_message();
        loop {
            // Wake up now and then to notice a stopped server.
            let msg = match tokio::time::timeout(Duration::from_secs(1), messages.next()).await {
                Ok(Some(msg)) => msg,
                Ok(None) => {
                    tracing::error!("chat: Redis subscription ended; reconnecting");
                    break;
                }
                Err(_) if inbound.is_closed() => return,
                Err(_) => continue,
            };
            let envelope: Envelope = match serde_json::from_slice(msg.get_payload_bytes()) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, channel = msg.get_channel_name(), "chat: undecodable Redis message dropped");
                    continue;
                }
            };
            if envelope.server == server_id {
                continue;
            }
            inbound.deliver(&envelope.line);
        }
        drop(messages);
        backoff.wait().await;
    }
}

async fn subscribe(
    client: &redis::Client,
    names: &Names,
) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub
        .subscribe(format!("{}:chat:global", names.prefix))
        .await?;
    pubsub
        .subscribe(format!("{}:chat:whisper", names.prefix))
        .await?;
    pubsub
        .psubscribe(format!("{}:chat:zone:*", names.prefix))
        .await?;
    Ok(pubsub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_and_key_names() {
        let names = Names::new("mmo");
        let mut line = ChatLine {
            from_name: "Al".into(),
            channel: ChatChannel::Zone,
            zone_id: 3,
            to: None,
            text: "hi".into(),
        };
        assert_eq!(names.channel(&line).unwrap(), "mmo:chat:zone:3");
        line.channel = ChatChannel::Global;
        assert_eq!(names.channel(&line).unwrap(), "mmo:chat:global");
        line.channel = ChatChannel::Whisper;
        assert_eq!(names.channel(&line).unwrap(), "mmo:chat:whisper");
        line.channel = ChatChannel::Say;
        assert!(names.channel(&line).is_none());
        assert_eq!(names.presence("Bob"), "mmo:presence:Bob");
    }

    #[test]
    fn a_bad_url_is_an_error_naming_the_option() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let e = RedisChatBridge::new(RedisChatConfig::new("nonsense")).unwrap_err();
        assert!(e.contains("chat.redis_url"), "{e}");
    }
}
