//! Chat rules, sans-IO: the per-player rate limiter (a burst plus a per-minute refill), the
//! automatic mute after repeated rate-limit hits, the operator mute, channel membership,
//! and the text checks. Time is always an argument (`now_ms`, Unix milliseconds, so a mute
//! can say until when). The drivers (mmo-net's chat hub) keep one [`ChatMember`] per
//! online player and route the lines this module admits.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::control::{ChatChannel, ChatRefusalKind, MAX_CHAT_LEN_BYTES};
use crate::persist::valid_character_name;

/// Chat limits. Mirrors the server's `[chat]` settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatConfig {
    /// Radius of say, metres.
    pub say_radius_m: f32,
    /// Lines a player may send at once (`>= 1`).
    pub burst_lines: u32,
    /// Lines refilled per minute after the burst (`>= 1`).
    pub lines_per_min: u32,
    /// Rate-limit hits within a minute that mute the player (`>= 1`).
    pub mute_after_limited: u32,
    /// How long that automatic mute lasts, seconds.
    pub mute_s: u64,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            say_radius_m: 30.0,
            burst_lines: 5,
            lines_per_min: 30,
            mute_after_limited: 5,
            mute_s: 60,
        }
    }
}

/// A refused chat line, join or leave: a stable kind and a message for the player.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatRefusal {
    /// Why.
    pub kind: ChatRefusalKind,
    /// Human-readable detail.
    pub message: String,
}

impl ChatRefusal {
    /// A refusal of `kind` saying `message`.
    #[must_use]
    pub fn new(kind: ChatRefusalKind, message: impl Into<String>) -> Self {
        ChatRefusal {
            kind,
            message: message.into(),
        }
    }
}

/// A zone, global or whisper line admitted by the rules, as routed between zone threads and
/// server processes (the Redis bridge carries it as JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLine {
    /// The speaker's character name.
    pub from_name: String,
    /// Zone, global or whisper.
    pub channel: ChatChannel,
    /// The speaker's zone (the zone channel's audience).
    pub zone_id: u16,
    /// The whisper's recipient.
    pub to: Option<String>,
    /// The cleaned text.
    pub text: String,
}

impl ChatLine {
    /// Checks a line received from elsewhere (another process): bounded, known channel
    /// with the right recipient, valid sender name.
    pub fn validate(&self) -> Result<(), String> {
        if !valid_character_name(&self.from_name) {
            return Err("chat line: bad sender name".to_owned());
        }
        if self.channel == ChatChannel::Say {
            return Err("chat line: say does not cross zones".to_owned());
        }
        check_recipient(self.channel, self.to.as_deref()).map_err(|r| r.message)?;
        match clean_text(&self.text) {
            Ok(t) if t == self.text => Ok(()),
            Ok(_) => Err("chat line: text not clean".to_owned()),
            Err(r) => Err(format!("chat line: {}", r.message)),
        }
    }
}

const MINUTE_MS: u64 = 60_000;

/// One online player's chat state.
///
/// Invariants: `tokens_milli <= burst_lines * 1000`; `limited_at_ms` holds only hits within
/// the last minute, at most `mute_after_limited` of them.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatMember {
    /// Send allowance in thousandths of a line.
    tokens_milli: u64,
    /// When the allowance was last refilled.
    refilled_ms: u64,
    /// Recent rate-limit hits.
    limited_at_ms: VecDeque<u64>,
    /// Muted until this time (Unix ms), if muted.
    muted_until_ms: Option<u64>,
    /// Receives zone lines.
    pub zone_joined: bool,
    /// Receives global lines.
    pub global_joined: bool,
}

impl ChatMember {
    /// A player who just came online: full burst, in zone and global, not muted.
    #[must_use]
    pub fn new(config: &ChatConfig, now_ms: u64) -> Self {
        ChatMember {
            tokens_milli: u64::from(config.burst_lines.max(1)) * 1000,
            refilled_ms: now_ms,
            limited_at_ms: VecDeque::new(),
            muted_until_ms: None,
            zone_joined: true,
            global_joined: true,
        }
    }

    /// Mutes the player until `until_ms` (an operator action; replaces any mute).
    pub fn mute_until(&mut self, until_ms: u64) {
        self.muted_until_ms = Some(until_ms);
    }

    /// Lifts a mute.
    pub fn unmute(&mut self) {
        self.muted_until_ms = None;
    }

    /// Until when the player is muted, if they are at `now_ms`.
    #[must_use]
    pub fn muted_until_ms(&self, now_ms: u64) -> Option<u64> {
        self.muted_until_ms.filter(|&until| until > now_ms)
    }

    /// A new connection of the same player (a login after being offline, or a duplicate
    /// login): channel membership goes back to the defaults (in zone and global); the
    /// allowance, the recent rate-limit hits and the mute are kept, so reconnecting does
    /// not lift a limit.
    pub fn new_session(&mut self) {
        self.zone_joined = true;
        self.global_joined = true;
    }

    /// From when (Unix ms) this state restricts nothing more than a fresh
    /// [`ChatMember::new`] would: the mute is over, the allowance has refilled to the full
    /// burst and no rate-limit hit of the last minute counts towards a mute any more. A
    /// driver may forget the state of an offline player from then on. `u64::MAX` when the
    /// allowance never refills (`lines_per_min == 0`).
    #[must_use]
    pub fn settles_at_ms(&self, config: &ChatConfig) -> u64 {
        let cap = u64::from(config.burst_lines.max(1)) * 1000;
        let missing_milli = cap.saturating_sub(self.tokens_milli);
        let full_at_ms = if missing_milli == 0 {
            self.refilled_ms
        } else if config.lines_per_min == 0 {
            u64::MAX
        } else {
            // `refill` gains elapsed_ms * lines_per_min / 60 milli-lines.
            let needed_ms = missing_milli
                .saturating_mul(60)
                .div_ceil(u64::from(config.lines_per_min));
            self.refilled_ms.saturating_add(needed_ms)
        };
        let hits_forgotten_at_ms = self
            .limited_at_ms
            .back()
            .map_or(0, |&t| t.saturating_add(MINUTE_MS));
        full_at_ms
            .max(hits_forgotten_at_ms)
            .max(self.muted_until_ms.unwrap_or(0))
    }

    /// Whether the player receives lines of `channel`.
    #[must_use]
    pub fn receives(&self, channel: ChatChannel) -> bool {
        match channel {
            ChatChannel::Zone => self.zone_joined,
            ChatChannel::Global => self.global_joined,
            ChatChannel::Say | ChatChannel::Whisper => true,
        }
    }

    /// Joins (`joined`) or leaves a channel; say and whisper are refused `chat_cannot_leave`.
    pub fn set_joined(&mut self, channel: ChatChannel, joined: bool) -> Result<(), ChatRefusal> {
        match channel {
            ChatChannel::Zone => self.zone_joined = joined,
            ChatChannel::Global => self.global_joined = joined,
            ChatChannel::Say | ChatChannel::Whisper => {
                return Err(ChatRefusal::new(
                    ChatRefusalKind::CannotLeave,
                    format!("the {} channel cannot be joined or left", channel.as_str()),
                ));
            }
        }
        Ok(())
    }

    /// Checks a line the player wants to send: membership, recipient, text, mute and rate
    /// limit, in that order (a refused text costs nothing). Returns the cleaned text.
    pub fn admit(
        &mut self,
        config: &ChatConfig,
        channel: ChatChannel,
        to: Option<&str>,
        text: &str,
        now_ms: u64,
    ) -> Result<String, ChatRefusal> {
        if !self.receives(channel) {
            return Err(ChatRefusal::new(
                ChatRefusalKind::NotJoined,
                format!(
                    "join the {} channel before speaking in it",
                    channel.as_str()
                ),
            ));
        }
        check_recipient(channel, to)?;
        let text = clean_text(text)?;
        if let Some(until) = self.muted_until_ms(now_ms) {
            return Err(muted(until, now_ms));
        }
        self.refill(config, now_ms);
        if self.tokens_milli >= 1000 {
            self.tokens_milli -= 1000;
            return Ok(text);
        }
        while self
            .limited_at_ms
            .front()
            .is_some_and(|&t| t + MINUTE_MS <= now_ms)
        {
            self.limited_at_ms.pop_front();
        }
        self.limited_at_ms.push_back(now_ms);
        if self.limited_at_ms.len() >= config.mute_after_limited.max(1) as usize {
            self.limited_at_ms.clear();
            let until = now_ms.saturating_add(config.mute_s.saturating_mul(1000));
            self.muted_until_ms = Some(until);
            return Err(muted(until, now_ms));
        }
        Err(ChatRefusal::new(
            ChatRefusalKind::RateLimited,
            format!(
                "too many lines: at most {} at once and {} per minute",
                config.burst_lines, config.lines_per_min
            ),
        ))
    }

    fn refill(&mut self, config: &ChatConfig, now_ms: u64) {
        let elapsed_ms = now_ms.saturating_sub(self.refilled_ms);
        // lines_per_min lines per 60_000 ms = lines_per_min / 60 milli-lines per ms.
        let gained = elapsed_ms.saturating_mul(u64::from(config.lines_per_min)) / 60;
        let cap = u64::from(config.burst_lines.max(1)) * 1000;
        self.tokens_milli = self.tokens_milli.saturating_add(gained).min(cap);
        self.refilled_ms = self.refilled_ms.max(now_ms);
    }
}

fn muted(until_ms: u64, now_ms: u64) -> ChatRefusal {
    let left_s = until_ms.saturating_sub(now_ms).div_ceil(1000);
    ChatRefusal::new(
        ChatRefusalKind::Muted,
        format!("muted until {until_ms} (Unix ms; {left_s} s from now)"),
    )
}

/// Checks a line's recipient: a whisper needs a valid character name, other channels none.
pub fn check_recipient(channel: ChatChannel, to: Option<&str>) -> Result<(), ChatRefusal> {
    match (channel, to) {
        (ChatChannel::Whisper, Some(name)) if valid_character_name(name) => Ok(()),
        (ChatChannel::Whisper, Some(name)) => Err(ChatRefusal::new(
            ChatRefusalKind::BadRecipient,
            format!(
                "`{}` is not a character name",
                name.chars().take(32).collect::<String>()
            ),
        )),
        (ChatChannel::Whisper, None) => Err(ChatRefusal::new(
            ChatRefusalKind::BadRecipient,
            "a whisper needs a recipient",
        )),
        (_, Some(_)) => Err(ChatRefusal::new(
            ChatRefusalKind::BadRecipient,
            format!("the {} channel takes no recipient", channel.as_str()),
        )),
        (_, None) => Ok(()),
    }
}

/// The text without control characters and surrounding whitespace; refused
/// `chat_too_long` over [`MAX_CHAT_LEN_BYTES`] and `chat_empty` when nothing printable is
/// left.
pub fn clean_text(text: &str) -> Result<String, ChatRefusal> {
    if text.len() > MAX_CHAT_LEN_BYTES {
        return Err(ChatRefusal::new(
            ChatRefusalKind::TooLong,
            format!(
                "chat line of {} bytes exceeds the limit of {MAX_CHAT_LEN_BYTES}",
                text.len()
            ),
        ));
    }
    let cleaned: String = text.chars().filter(|c| !c.is_control()).collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        return Err(ChatRefusal::new(
            ChatRefusalKind::Empty,
            "the line has nothing printable",
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ChatConfig {
        ChatConfig {
            say_radius_m: 30.0,
            burst_lines: 3,
            lines_per_min: 60,
            mute_after_limited: 3,
            mute_s: 10,
        }
    }

    fn send(m: &mut ChatMember, now_ms: u64) -> Result<String, ChatRefusal> {
        m.admit(&config(), ChatChannel::Global, None, "hello", now_ms)
    }

    #[test]
    fn burst_then_refill() {
        let mut m = ChatMember::new(&config(), 1_000);
        for _ in 0..3 {
            assert_eq!(send(&mut m, 1_000).unwrap(), "hello");
        }
        assert_eq!(
            send(&mut m, 1_000).unwrap_err().kind,
            ChatRefusalKind::RateLimited
        );
        // 60 per minute: one line per second.
        assert!(send(&mut m, 2_000).is_ok());
        assert_eq!(
            send(&mut m, 2_500).unwrap_err().kind,
            ChatRefusalKind::RateLimited
        );
        // A long pause refills at most the burst.
        for _ in 0..3 {
            assert!(send(&mut m, 600_000).is_ok());
        }
        assert!(send(&mut m, 600_000).is_err());
    }

    #[test]
    fn repeated_limit_hits_mute_then_the_mute_expires() {
        let mut m = ChatMember::new(&config(), 0);
        for _ in 0..3 {
            send(&mut m, 0).unwrap();
        }
        assert_eq!(
            send(&mut m, 0).unwrap_err().kind,
            ChatRefusalKind::RateLimited
        );
        assert_eq!(
            send(&mut m, 0).unwrap_err().kind,
            ChatRefusalKind::RateLimited
        );
        let mute = send(&mut m, 0).unwrap_err();
        assert_eq!(mute.kind, ChatRefusalKind::Muted);
        assert!(
            mute.message.contains("muted until 10000"),
            "{}",
            mute.message
        );
        assert_eq!(m.muted_until_ms(5_000), Some(10_000));
        assert_eq!(
            send(&mut m, 9_999).unwrap_err().kind,
            ChatRefusalKind::Muted
        );
        assert!(send(&mut m, 10_000).is_ok());
    }

    #[test]
    fn hits_spread_over_more_than_a_minute_do_not_mute() {
        let mut m = ChatMember::new(&config(), 0);
        let cfg = ChatConfig {
            lines_per_min: 1,
            burst_lines: 1,
            ..config()
        };
        let mut now = 0;
        for _ in 0..6 {
            // One line passes, the next is limited; 61 s later the allowance is back.
            assert!(m.admit(&cfg, ChatChannel::Zone, None, "a", now).is_ok());
            let e = m
                .admit(&cfg, ChatChannel::Zone, None, "a", now)
                .unwrap_err();
            assert_eq!(e.kind, ChatRefusalKind::RateLimited);
            now += 61_000;
        }
    }

    #[test]
    fn operator_mute() {
        let mut m = ChatMember::new(&config(), 0);
        m.mute_until(50_000);
        assert_eq!(send(&mut m, 1).unwrap_err().kind, ChatRefusalKind::Muted);
        m.unmute();
        assert!(send(&mut m, 2).is_ok());
    }

    #[test]
    fn settles_when_the_mute_ends_and_the_burst_is_full() {
        let cfg = config();
        let mut m = ChatMember::new(&cfg, 1_000);
        assert_eq!(m.settles_at_ms(&cfg), 1_000, "a fresh member is settled");
        send(&mut m, 1_000).unwrap();
        // One line missing at one line per second.
        assert_eq!(m.settles_at_ms(&cfg), 2_000);
        for _ in 0..2 {
            send(&mut m, 1_000).unwrap();
        }
        // A rate-limit hit counts for a minute.
        assert_eq!(
            send(&mut m, 1_000).unwrap_err().kind,
            ChatRefusalKind::RateLimited
        );
        assert_eq!(m.settles_at_ms(&cfg), 61_000);
        // An operator mute past that is what counts.
        m.mute_until(100_000);
        assert_eq!(m.settles_at_ms(&cfg), 100_000);
        // The state is kept by a new session; membership is reset.
        m.set_joined(ChatChannel::Global, false).unwrap();
        m.new_session();
        assert!(m.receives(ChatChannel::Global));
        assert_eq!(
            send(&mut m, 99_999).unwrap_err().kind,
            ChatRefusalKind::Muted
        );
        let never = ChatConfig {
            lines_per_min: 0,
            ..cfg
        };
        let mut m = ChatMember::new(&never, 0);
        m.admit(&never, ChatChannel::Zone, None, "a", 0).unwrap();
        assert_eq!(m.settles_at_ms(&never), u64::MAX);
    }

    #[test]
    fn text_and_recipient_checks() {
        assert_eq!(clean_text("  hi\u{7}there\n ").unwrap(), "hithere");
        assert_eq!(
            clean_text("\u{1}\u{2} \t").unwrap_err().kind,
            ChatRefusalKind::Empty
        );
        assert_eq!(clean_text("").unwrap_err().kind, ChatRefusalKind::Empty);
        assert_eq!(
            clean_text(&"x".repeat(MAX_CHAT_LEN_BYTES + 1))
                .unwrap_err()
                .kind,
            ChatRefusalKind::TooLong
        );
        assert!(clean_text(&"é".repeat(MAX_CHAT_LEN_BYTES / 2)).is_ok());
        assert!(check_recipient(ChatChannel::Whisper, Some("Bob")).is_ok());
        for (channel, to) in [
            (ChatChannel::Whisper, None),
            (ChatChannel::Whisper, Some("no spaces")),
            (ChatChannel::Global, Some("Bob")),
        ] {
            assert_eq!(
                check_recipient(channel, to).unwrap_err().kind,
                ChatRefusalKind::BadRecipient
            );
        }
        // A refused text costs no allowance.
        let mut m = ChatMember::new(
            &ChatConfig {
                burst_lines: 1,
                ..config()
            },
            0,
        );
        assert!(m.admit(&config(), ChatChannel::Say, None, " ", 0).is_err());
        assert!(m.admit(&config(), ChatChannel::Say, None, "ok", 0).is_ok());
    }

    #[test]
    fn received_lines_are_checked() {
        let line = ChatLine {
            from_name: "Alice".into(),
            channel: ChatChannel::Whisper,
            zone_id: 0,
            to: Some("Bob".into()),
            text: "hi".into(),
        };
        assert!(line.validate().is_ok());
        for bad in [
            ChatLine {
                to: None,
                ..line.clone()
            },
            ChatLine {
                from_name: "".into(),
                ..line.clone()
            },
            ChatLine {
                text: " \u{1}".into(),
                ..line.clone()
            },
            ChatLine {
                channel: ChatChannel::Say,
                to: None,
                ..line.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn membership() {
        let mut m = ChatMember::new(&config(), 0);
        m.set_joined(ChatChannel::Global, false).unwrap();
        assert!(!m.receives(ChatChannel::Global));
        assert_eq!(
            send(&mut m, 0).unwrap_err().kind,
            ChatRefusalKind::NotJoined
        );
        m.set_joined(ChatChannel::Global, true).unwrap();
        assert!(send(&mut m, 0).is_ok());
        for channel in [ChatChannel::Say, ChatChannel::Whisper] {
            assert_eq!(
                m.set_joined(channel, false).unwrap_err().kind,
                ChatRefusalKind::CannotLeave
            );
            assert!(m.receives(channel));
        }
    }
}
