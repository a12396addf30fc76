//! The zone's part of chat: say lines go to the players within a radius of the speaker's
//! character (the same distance test combat observers use), and chat lines and refusals
//! routed by the driver (mmo-net's chat hub) are sent to a connection. The rules (limits,
//! mutes, membership) are checked before, by [`crate::chat::ChatMember`].
//!
//! Not done: say does not reach players of a neighbour zone standing across the border
//! (ghosts are not players here).

use crate::chat::ChatRefusal;
use crate::control::ChatChannel;
use crate::entity::EntityId;

use super::{ConnectionId, Zone};

impl Zone {
    /// Sends a say line from `from` (named `from_name`) to every logged-in player whose
    /// character is within `radius_m` of the speaker's, the speaker included. Returns how
    /// many received it (0 when the speaker has no character here).
    pub fn say(&mut self, from: ConnectionId, from_name: &str, text: &str, radius_m: f32) -> usize {
        let Some(speaker) = self.players.get(&from) else {
            return 0;
        };
        let (Some(at), Some(entity)) = (
            speaker.character.map(|c| c.position_m),
            speaker.connection.entity(),
        ) else {
            return 0;
        };
        let radius_sq = radius_m * radius_m;
        let mut heard = 0;
        for player in self.players.values_mut() {
            let near = player
                .character
                .is_some_and(|c| c.position_m.distance_squared(at) <= radius_sq);
            if near && player.connection.entity().is_some() {
                player
                    .connection
                    .send_chat(from_name, entity, ChatChannel::Say, text);
                heard += 1;
            }
        }
        heard
    }

    /// Sends a chat line to connection `to` if it is logged in here; `from_entity` is
    /// `EntityId(0)` for a speaker of another zone or process. Returns whether it was sent.
    pub fn send_chat(
        &mut self,
        to: ConnectionId,
        from_name: &str,
        from_entity: EntityId,
        channel: ChatChannel,
        text: &str,
    ) -> bool {
        match self.players.get_mut(&to) {
            Some(p) if p.connection.entity().is_some() => {
                p.connection
                    .send_chat(from_name, from_entity, channel, text);
                true
            }
            _ => false,
        }
    }

    /// Tells connection `to` its chat request was refused. Returns whether it is here.
    pub fn send_chat_refused(&mut self, to: ConnectionId, refusal: &ChatRefusal) -> bool {
        match self.players.get_mut(&to) {
            Some(p) => {
                p.connection
                    .send_chat_refused(refusal.kind, &refusal.message);
                true
            }
            None => false,
        }
    }

    /// The entity of a logged-in connection here (chat's `from_entity`).
    #[must_use]
    pub fn chat_entity(&self, id: ConnectionId) -> Option<EntityId> {
        self.players.get(&id).and_then(|p| p.connection.entity())
    }
}

#[cfg(test)]
mod tests {
    use glam::Vec3;

    use crate::control::{self, ChatRefusalKind, FrameDecoder, ServerControl};
    use crate::entity::CharacterState;
    use crate::session::Transmit;
    use crate::zone::{ConnectionId, Zone, ZoneConfig};

    fn player_at(zone: &mut Zone, x_m: f32) -> ConnectionId {
        let id = crate::zone::test_support::pending_login(zone);
        zone.accept_login_at(id, CharacterState::at(Vec3::new(x_m, 0.0, 0.0)))
            .expect("login pending");
        id
    }

    fn control_messages(zone: &mut Zone, id: ConnectionId) -> Vec<ServerControl> {
        let mut decoder = FrameDecoder::new();
        while let Some(t) = zone.poll_transmit(id) {
            if let Transmit::Stream(bytes) = t {
                decoder.push(&bytes);
            }
        }
        let mut out = Vec::new();
        while let Some(m) = decoder
            .next_message::<ServerControl>()
            .expect("valid frames")
        {
            out.push(m);
        }
        out
    }

    fn chats(zone: &mut Zone, id: ConnectionId) -> Vec<(String, String)> {
        control_messages(zone, id)
            .into_iter()
            .filter_map(|m| match m {
                ServerControl::Chat {
                    from_name, text, ..
                } => Some((from_name, text)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn say_reaches_the_near_players_only() {
        let mut zone = Zone::new(ZoneConfig::default()).expect("valid zone");
        let speaker = player_at(&mut zone, 0.0);
        let near = player_at(&mut zone, 20.0);
        let far = player_at(&mut zone, 45.0);
        for id in [speaker, near, far] {
            let _ = control_messages(&mut zone, id);
        }
        assert_eq!(zone.say(speaker, "Alice", "hello", 30.0), 2);
        let line = ("Alice".to_owned(), "hello".to_owned());
        assert_eq!(chats(&mut zone, speaker), std::slice::from_ref(&line));
        assert_eq!(chats(&mut zone, near), [line]);
        assert!(chats(&mut zone, far).is_empty());
        assert_eq!(zone.say(ConnectionId(999), "Nobody", "x", 30.0), 0);
    }

    #[test]
    fn routed_lines_and_refusals_reach_the_connection() {
        let mut zone = Zone::new(ZoneConfig::default()).expect("valid zone");
        let id = player_at(&mut zone, 0.0);
        let _ = control_messages(&mut zone, id);
        assert!(zone.send_chat(
            id,
            "Bob",
            crate::entity::EntityId(0),
            control::ChatChannel::Global,
            "hi"
        ));
        assert!(zone.send_chat_refused(
            id,
            &crate::chat::ChatRefusal::new(ChatRefusalKind::Empty, "nothing")
        ));
        assert!(!zone.send_chat(
            ConnectionId(77),
            "Bob",
            crate::entity::EntityId(0),
            control::ChatChannel::Global,
            "hi"
        ));
        let got = control_messages(&mut zone, id);
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[0], ServerControl::Chat { from_name, .. } if from_name == "Bob"));
        assert!(matches!(
            &got[1],
            ServerControl::ChatRefused {
                kind: ChatRefusalKind::Empty,
                ..
            }
        ));
    }
}
