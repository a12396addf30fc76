//! A multi-zone harness: every [`Zone`] of a [`WorldLayout`] and any number of
//! [`ClientSession`]s over seeded link conditioners, stepped on one virtual clock. It plays
//! the part of the multi-zone driver (`mmo-net` runs each zone on its own thread and
//! carries the same values over channels): it routes each connection's bytes to the zone
//! that holds it, hands players over when they cross a border (the client's links and
//! session stay as they are: no reconnect), and carries border exports between neighbours.
//!
//! Time advances in 1 ms steps. All zones tick together (the same tick number at the same
//! time, as the zone contract requires). Per server tick, in the documented driver order:
//! timeouts and login events of every zone, `run_tick` of every zone, then departures
//! (`take_player` → `insert_player` at once), then border exports (`border_export` →
//! `set_ghosts`), then every connection's transmits are flushed from the zone holding it.
//!
//! With [`WorldHarness::across_processes`] set, every transfer and border export crosses as
//! bytes ([`PlayerTransfer::encode`] → [`PlayerTransfer::decode`], postcard for exports),
//! as between zone processes, so a test checks that nothing the session needs is lost in
//! the encoding.

use mmo_core::entity::CharacterState;
use mmo_core::session::client::{ClientConfig, ClientEvent, ClientSession, ClientState};
use mmo_core::session::server::ServerEvent;
use mmo_core::world::{WorldLayout, ZoneId};
use mmo_core::zone::{BorderExport, ConnectionId, PlayerTransfer, Zone, ZoneConfig, ZonePlacement};

use crate::clock::VirtualClock;
use crate::harness::{InputSource, ReliableLink, STEP_US, carry};
use crate::link::{LinkConfig, LinkPair};

/// One simulated player of the world harness.
#[derive(Debug)]
pub struct WorldClient {
    /// The client session (never replaced: a handoff is invisible to it).
    pub session: ClientSession,
    /// Its connection id (globally unique, kept across zones).
    pub connection: ConnectionId,
    /// The zone holding the connection now.
    pub zone: ZoneId,
    /// Where the character appears at login.
    pub spawn: CharacterState,
    /// Datagram links.
    pub link: LinkPair,
    /// Control stream, client to server.
    pub stream_up: ReliableLink,
    /// Control stream, server to client.
    pub stream_down: ReliableLink,
    /// Every event the session produced, in order.
    pub events: Vec<ClientEvent>,
    /// Offset of this client's input clock from the server's tick clock, microseconds.
    pub phase_us: u64,
}

/// A handoff the harness carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handoff {
    /// When (virtual clock).
    pub now_us: u64,
    /// The client's index.
    pub client: usize,
    /// From which zone.
    pub from: ZoneId,
    /// To which zone.
    pub to: ZoneId,
}

/// The harness. See the module docs.
#[derive(Debug)]
pub struct WorldHarness {
    /// The virtual clock.
    pub clock: VirtualClock,
    /// The world's split.
    pub layout: WorldLayout,
    /// The zones; index `i` is `ZoneId(i)`.
    pub zones: Vec<Zone>,
    /// The clients, in the order added.
    pub clients: Vec<WorldClient>,
    /// Server events seen, in order.
    pub server_events: Vec<(ZoneId, ConnectionId, ServerEvent)>,
    /// Handoffs carried out, in order.
    pub handoffs: Vec<Handoff>,
    /// Transfers a zone refused (reason), in order; a correct run has none.
    pub refused_transfers: Vec<String>,
    /// Carry transfers and border exports as bytes, as between processes (see the module
    /// docs). Off by default.
    pub across_processes: bool,
    /// Size of each transfer carried as bytes, in order.
    pub transfer_len_bytes: Vec<usize>,
    tick_us: u64,
    next_tick_us: u64,
    seed: u64,
}

impl WorldHarness {
    /// One zone per zone of `layout`, each `base` placed at its rectangle (with the default
    /// handoff margin). Fails with a message naming the bad setting.
    pub fn new(base: ZoneConfig, layout: WorldLayout, seed: u64) -> Result<Self, String> {
        let tick_us = base.tick_rate.tick_us();
        let zones = layout
            .zones()
            .map(|z| {
                Zone::new(ZoneConfig {
                    placement: Some(ZonePlacement::new(layout, z)),
                    ..base.clone()
                })
                .map_err(|e| format!("zone {}: {e}", z.0))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WorldHarness {
            clock: VirtualClock::new(0),
            layout,
            zones,
            clients: Vec::new(),
            server_events: Vec::new(),
            handoffs: Vec::new(),
            refused_transfers: Vec::new(),
            across_processes: false,
            transfer_len_bytes: Vec::new(),
            tick_us,
            next_tick_us: tick_us,
            seed,
        })
    }

    /// The zone holding a connection id now, if any.
    #[must_use]
    pub fn zone_of(&self, connection: ConnectionId) -> Option<ZoneId> {
        self.layout.zones().find(|z| {
            self.zones[usize::from(z.0)]
                .connection(connection)
                .is_some()
        })
    }

    /// Connects a new client over `link` (the same config both ways) to the zone that owns
    /// `spawn`'s position; it logs in with `token` and appears as `spawn`. Returns its index.
    pub fn add_client(
        &mut self,
        config: ClientConfig,
        link: LinkConfig,
        token: &str,
        spawn: CharacterState,
    ) -> Result<usize, String> {
        let index = self.clients.len();
        let now_us = self.clock.now_us();
        let seed = self
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(index as u64);
        let link_pair = LinkPair::symmetric(link, seed).map_err(|e| e.to_string())?;
        let session = ClientSession::new(now_us, config, token)?;
        let zone = self.layout.zone_at(spawn.position_m);
        let connection = self.zones[usize::from(zone.0)].connect(now_us);
        let phase_us = (index as u64 * 7_919) % self.tick_us;
        self.clients.push(WorldClient {
            session,
            connection,
            zone,
            spawn,
            link: link_pair,
            stream_up: ReliableLink::new(link.latency_us),
            stream_down: ReliableLink::new(link.latency_us),
            events: Vec::new(),
            phase_us,
        });
        self.flush_client(index);
        Ok(index)
    }

    /// Runs until the clock reaches `until_us`, asking `inputs` for each logged-in client's
    /// input on each of its ticks.
    pub fn run_until(&mut self, until_us: u64, inputs: &mut impl InputSource) {
        while self.clock.now_us() < until_us {
            self.clock.advance(STEP_US);
            self.step(inputs);
        }
    }

    fn zone_mut(&mut self, zone: ZoneId) -> &mut Zone {
        &mut self.zones[usize::from(zone.0)]
    }

    fn step(&mut self, inputs: &mut impl InputSource) {
        let now_us = self.clock.now_us();
        self.deliver(now_us);
        self.handle_server_events();
        for index in 0..self.clients.len() {
            let c = &mut self.clients[index];
            let due = now_us >= c.phase_us && (now_us - c.phase_us) % self.tick_us < STEP_US;
            if due && c.session.state() == ClientState::Active {
                if let Some(input) = inputs.next_input(index, &c.session) {
                    let _ = c.session.send_input(now_us, input);
                }
                c.session.advance_visual(self.tick_us as f32 / 1e6);
            }
            c.session.handle_timeout(now_us);
            self.flush_client(index);
        }
        while now_us >= self.next_tick_us {
            self.next_tick_us += self.tick_us;
            for zone in &mut self.zones {
                zone.handle_timeouts(now_us);
            }
            self.handle_server_events();
            for zone in &mut self.zones {
                zone.run_tick();
            }
            self.hand_over(now_us);
            self.exchange_borders();
            for index in 0..self.clients.len() {
                self.flush_server(index);
            }
        }
    }

    /// Step 3 of the driver order: departures move to their new zone at once.
    fn hand_over(&mut self, now_us: u64) {
        for from in self.layout.zones() {
            let departures: Vec<_> = self.zone_mut(from).drain_departures().collect();
            for d in departures {
                let Some(mut transfer) = self.zone_mut(from).take_player(d.connection) else {
                    continue;
                };
                if self.across_processes {
                    match transfer.encode().and_then(|b| {
                        self.transfer_len_bytes.push(b.len());
                        PlayerTransfer::decode(&b)
                    }) {
                        Ok(decoded) => transfer = decoded,
                        Err(e) => {
                            self.refused_transfers.push(e);
                            continue;
                        }
                    }
                }
                match self.zone_mut(d.to).insert_player(d.connection, transfer) {
                    Ok(()) => {
                        if let Some(client) = self
                            .clients
                            .iter()
                            .position(|c| c.connection == d.connection && c.zone == from)
                        {
                            self.clients[client].zone = d.to;
                            self.handoffs.push(Handoff {
                                now_us,
                                client,
                                from,
                                to: d.to,
                            });
                        }
                    }
                    Err(rejected) => self.refused_transfers.push(rejected.reason),
                }
            }
        }
    }

    /// Step 4 of the driver order: every zone's border lists go to its neighbours.
    fn exchange_borders(&mut self) {
        let mut exports = Vec::new();
        for from in self.layout.zones() {
            for to in self.layout.neighbours(from) {
                exports.push((to, self.zones[usize::from(from.0)].border_export(to)));
            }
        }
        for (to, mut export) in exports {
            if self.across_processes {
                match postcard::to_allocvec(&export)
                    .and_then(|b| postcard::from_bytes::<BorderExport>(&b))
                {
                    Ok(decoded) => export = decoded,
                    Err(e) => {
                        self.refused_transfers.push(format!("border export: {e}"));
                        continue;
                    }
                }
            }
            if let Err(e) = self.zone_mut(to).set_ghosts(&export) {
                self.refused_transfers.push(e);
            }
        }
    }

    fn deliver(&mut self, now_us: u64) {
        for c in &mut self.clients {
            let zone = &mut self.zones[usize::from(c.zone.0)];
            while let Some(bytes) = c.stream_up.poll_deliver(now_us) {
                zone.handle_stream(c.connection, now_us, &bytes);
            }
            while let Some(bytes) = c.link.client_to_server.poll_deliver(now_us) {
                zone.handle_datagram(c.connection, now_us, &bytes);
            }
            while let Some(bytes) = c.stream_down.poll_deliver(now_us) {
                c.session.handle_stream(now_us, &bytes);
            }
            while let Some(bytes) = c.link.server_to_client.poll_deliver(now_us) {
                c.session.handle_datagram(now_us, &bytes);
            }
            while let Some(event) = c.session.poll_event() {
                c.events.push(event);
            }
        }
    }

    fn handle_server_events(&mut self) {
        for z in self.layout.zones() {
            let events: Vec<_> = self.zone_mut(z).drain_events().collect();
            for (connection, event) in events {
                if matches!(event, ServerEvent::LoginRequested { .. })
                    && let Some(index) = self
                        .clients
                        .iter()
                        .position(|c| c.connection == connection && c.zone == z)
                {
                    let spawn = self.clients[index].spawn;
                    self.zone_mut(z).accept_login_at(connection, spawn);
                    self.flush_server(index);
                }
                self.server_events.push((z, connection, event));
            }
        }
    }

    fn flush_client(&mut self, index: usize) {
        let now_us = self.clock.now_us();
        let c = &mut self.clients[index];
        carry(
            now_us,
            std::iter::from_fn(|| c.session.poll_transmit()),
            &mut c.link.client_to_server,
            &mut c.stream_up,
        );
    }

    fn flush_server(&mut self, index: usize) {
        let now_us = self.clock.now_us();
        let c = &mut self.clients[index];
        let zone = &mut self.zones[usize::from(c.zone.0)];
        carry(
            now_us,
            std::iter::from_fn(|| zone.poll_transmit(c.connection)),
            &mut c.link.server_to_client,
            &mut c.stream_down,
        );
    }
}
