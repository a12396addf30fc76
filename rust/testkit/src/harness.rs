//! A client/server harness: one [`Zone`] and any number of [`ClientSession`]s connected by
//! seeded link conditioners, stepped on a virtual clock. The whole loop (login, inputs up,
//! snapshots down, reconciliation, interpolation) runs without a socket, reproducibly from
//! the seed.
//!
//! Datagrams cross a [`LinkPair`] (loss, jitter, duplication, reordering). The control stream
//! is reliable and ordered, as QUIC's is: it crosses a [`ReliableLink`] with the same base
//! latency and no loss.
//!
//! Time advances in 1 ms steps. The zone ticks at its rate; each client produces one input
//! per tick at the same rate, from a caller-supplied function, with a per-client phase offset
//! so clients are not in lock step with the server.

use std::collections::VecDeque;

use mmo_core::input::MoveInput;
use mmo_core::session::Transmit;
use mmo_core::session::client::{ClientConfig, ClientEvent, ClientSession, ClientState};
use mmo_core::session::server::ServerEvent;
use mmo_core::zone::{ConnectionId, Zone, ZoneConfig};

use crate::clock::VirtualClock;
use crate::link::{LinkConditioner, LinkConfig, LinkPair};

/// Resolution of the harness clock, microseconds.
pub const STEP_US: u64 = 1_000;

/// A lossless, ordered one-way byte stream with a fixed latency (QUIC's reliable stream as
/// the application sees it: retransmission is invisible apart from delay).
#[derive(Debug, Default)]
pub struct ReliableLink {
    latency_us: u64,
    /// Invariant: delivery times are non-decreasing front to back.
    queue: VecDeque<(u64, Vec<u8>)>,
}

impl ReliableLink {
    /// A stream with `latency_us` one-way delay.
    #[must_use]
    pub fn new(latency_us: u64) -> Self {
        ReliableLink {
            latency_us,
            queue: VecDeque::new(),
        }
    }

    /// Sends bytes at `now_us`.
    pub fn send(&mut self, now_us: u64, bytes: Vec<u8>) {
        let earliest = self.queue.back().map_or(0, |(t, _)| *t);
        self.queue
            .push_back(((now_us + self.latency_us).max(earliest), bytes));
    }

    /// Bytes due at `now_us`, in order.
    pub fn poll_deliver(&mut self, now_us: u64) -> Option<Vec<u8>> {
        if self.queue.front().is_some_and(|(t, _)| *t <= now_us) {
            self.queue.pop_front().map(|(_, b)| b)
        } else {
            None
        }
    }
}

/// One simulated player: its session, its connection id on the zone, and its links.
#[derive(Debug)]
pub struct HarnessClient {
    /// The client session.
    pub session: ClientSession,
    /// Its connection on the zone.
    pub connection: ConnectionId,
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
    /// Inputs sent so far.
    pub inputs_sent: u32,
}

/// What decides each client's input on each of its ticks: `(client index, session)` to the
/// input, or `None` to send nothing this tick.
pub trait InputSource {
    /// The next input of client `index`.
    fn next_input(&mut self, index: usize, session: &ClientSession) -> Option<MoveInput>;
}

impl<F: FnMut(usize, &ClientSession) -> Option<MoveInput>> InputSource for F {
    fn next_input(&mut self, index: usize, session: &ClientSession) -> Option<MoveInput> {
        self(index, session)
    }
}

/// The harness. See the module docs.
#[derive(Debug)]
pub struct Harness {
    /// The virtual clock.
    pub clock: VirtualClock,
    /// The server zone.
    pub zone: Zone,
    /// The clients, in the order added.
    pub clients: Vec<HarnessClient>,
    /// Server events seen, in order.
    pub server_events: Vec<(ConnectionId, ServerEvent)>,
    /// Tokens refused at login (everything else is accepted).
    pub refused_tokens: Vec<String>,
    tick_us: u64,
    next_tick_us: u64,
    seed: u64,
}

impl Harness {
    /// A harness around a new zone. Fails with a message naming the bad setting.
    pub fn new(zone_config: ZoneConfig, seed: u64) -> Result<Self, String> {
        let tick_us = zone_config.tick_rate.tick_us();
        Ok(Harness {
            clock: VirtualClock::new(0),
            zone: Zone::new(zone_config)?,
            clients: Vec::new(),
            server_events: Vec::new(),
            refused_tokens: Vec::new(),
            tick_us,
            next_tick_us: tick_us,
            seed,
        })
    }

    /// Connects a new client over `link` (the same config both ways); it logs in with
    /// `token`. Returns its index.
    pub fn add_client(
        &mut self,
        config: ClientConfig,
        link: LinkConfig,
        token: &str,
    ) -> Result<usize, String> {
        let index = self.clients.len();
        let now_us = self.clock.now_us();
        let seed = self
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(index as u64);
        let link_pair = LinkPair::symmetric(link, seed).map_err(|e| e.to_string())?;
        let session = ClientSession::new(now_us, config, token)?;
        let connection = self.zone.connect(now_us);
        // Spread client input clocks over the tick so they are not in lock step.
        let phase_us = (index as u64 * 7_919) % self.tick_us;
        self.clients.push(HarnessClient {
            session,
            connection,
            link: link_pair,
            stream_up: ReliableLink::new(link.latency_us),
            stream_down: ReliableLink::new(link.latency_us),
            events: Vec::new(),
            phase_us,
            inputs_sent: 0,
        });
        self.flush_client(index);
        Ok(index)
    }

    /// Runs until the clock reaches `until_us`, asking `inputs` for each client's input on
    /// each of its ticks once it is logged in.
    pub fn run_until(&mut self, until_us: u64, inputs: &mut impl InputSource) {
        while self.clock.now_us() < until_us {
            self.clock.advance(STEP_US);
            self.step(inputs);
        }
    }

    fn step(&mut self, inputs: &mut impl InputSource) {
        let now_us = self.clock.now_us();
        self.deliver(now_us);
        self.handle_server_events();
        // Client input ticks.
        for index in 0..self.clients.len() {
            let c = &mut self.clients[index];
            let due = now_us >= c.phase_us && (now_us - c.phase_us) % self.tick_us < STEP_US;
            if due && c.session.state() == ClientState::Active {
                if let Some(input) = inputs.next_input(index, &c.session)
                    && c.session.send_input(now_us, input).is_some()
                {
                    c.inputs_sent += 1;
                }
                c.session.advance_visual(self.tick_us as f32 / 1e6);
            }
            c.session.handle_timeout(now_us);
            self.flush_client(index);
        }
        // Server ticks.
        while now_us >= self.next_tick_us {
            self.next_tick_us += self.tick_us;
            self.zone.handle_timeouts(now_us);
            self.handle_server_events();
            self.zone.run_tick();
            for index in 0..self.clients.len() {
                self.flush_server(index);
            }
        }
    }

    fn deliver(&mut self, now_us: u64) {
        for c in &mut self.clients {
            while let Some(bytes) = c.stream_up.poll_deliver(now_us) {
                self.zone.handle_stream(c.connection, now_us, &bytes);
            }
            while let Some(bytes) = c.link.client_to_server.poll_deliver(now_us) {
                self.zone.handle_datagram(c.connection, now_us, &bytes);
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
        let events: Vec<_> = self.zone.drain_events().collect();
        for (connection, event) in events {
            if let ServerEvent::LoginRequested { token } = &event {
                if self.refused_tokens.iter().any(|t| t == token) {
                    self.zone.close(
                        connection,
                        mmo_core::control::DisconnectReason::BadToken,
                        "token refused",
                    );
                } else {
                    self.zone.accept_login(connection);
                }
                if let Some(index) = self.clients.iter().position(|c| c.connection == connection) {
                    self.flush_server(index);
                }
            }
            self.server_events.push((connection, event));
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
        let zone = &mut self.zone;
        carry(
            now_us,
            std::iter::from_fn(|| zone.poll_transmit(c.connection)),
            &mut c.link.server_to_client,
            &mut c.stream_down,
        );
    }
}

/// Puts `transmits` on their way at `now_us`: datagrams through the conditioned link,
/// stream bytes through the reliable one (both harnesses use it, in both directions).
pub(crate) fn carry(
    now_us: u64,
    transmits: impl Iterator<Item = Transmit>,
    datagrams: &mut LinkConditioner,
    stream: &mut ReliableLink,
) {
    for t in transmits {
        match t {
            Transmit::Datagram(d) => datagrams.send(now_us, d),
            Transmit::Stream(s) => stream.send(now_us, s),
        }
    }
}
