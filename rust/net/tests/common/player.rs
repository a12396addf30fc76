//! A test player: a [`NetClient`] driven once per tick, with every event it saw.

use glam::Vec3;
use mmo_core::entity::EntityId;
use mmo_core::input::MoveInput;
use mmo_core::session::client::{ClientEvent, ClientState};
use mmo_net::client::NetClient;

/// Everything a client saw, and what it sent.
pub struct Player {
    pub client: NetClient,
    /// Every event, in order.
    pub events: Vec<ClientEvent>,
    /// Inputs the session accepted for sending.
    pub inputs_sent: u32,
}

impl Player {
    pub fn new(client: NetClient) -> Self {
        Player {
            client,
            events: Vec::new(),
            inputs_sent: 0,
        }
    }

    /// Feeds what arrived to the session and keeps its events.
    pub fn pump(&mut self) {
        self.client.pump();
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }

    /// One frame: pump, then (once active) send `input` and advance the visual smoothing.
    pub fn tick(&mut self, input: MoveInput, tick_s: f32) {
        self.pump();
        if self.client.state() == ClientState::Active {
            if self.client.send_input(input).is_some() {
                self.inputs_sent += 1;
            }
            self.client.session_mut().advance_visual(tick_s);
        }
    }

    /// The controlled entity, once welcomed.
    pub fn entity(&self) -> Option<EntityId> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::Welcome { entity_id, .. } => Some(*entity_id),
            _ => None,
        })
    }

    /// Whether `id` is a remote entity of this client now.
    pub fn sees(&self, id: EntityId) -> bool {
        self.client.session().remote_ids().any(|r| r == id)
    }

    /// The predicted position, once welcomed.
    pub fn position_m_if_welcomed(&self) -> Option<Vec3> {
        Some(self.client.session().predictor()?.predicted().position_m)
    }

    /// The predicted position (the player must be welcomed).
    pub fn position_m(&self) -> Vec3 {
        self.position_m_if_welcomed().expect("a welcomed player")
    }
}

/// Ticks `a` and `b` idle (at most 300 ticks of `interval`, `tick_s` each) until each has
/// been welcomed and sees the other.
pub async fn until_they_see_each_other(
    a: &mut Player,
    b: &mut Player,
    interval: &mut tokio::time::Interval,
    tick_s: f32,
) {
    let idle = MoveInput::default();
    for _ in 0..300 {
        interval.tick().await;
        a.tick(idle, tick_s);
        b.tick(idle, tick_s);
        if let (Some(ea), Some(eb)) = (a.entity(), b.entity())
            && a.sees(eb)
            && b.sees(ea)
        {
            break;
        }
    }
}
