//! Client-side prediction and reconciliation of the player's own character.
//!
//! The client applies every input at once ([`Predictor::push_input`]), numbering it with an
//! input sequence and remembering the input and the resulting state in a bounded ring. When
//! a snapshot arrives saying "after your input `ack_input_seq` you were in `server_state`",
//! [`Predictor::reconcile`] compares that with the stored prediction bit for bit (the step is
//! deterministic, so an honest, undisturbed prediction matches exactly). On a mismatch it
//! rewinds to the server state and replays every later stored input.
//!
//! The correction is hidden from the player by a visual offset: the jump between the old and
//! the new predicted position is added to [`Predictor::visual_offset_m`], which
//! [`Predictor::advance_visual`] decays exponentially with `correction_half_life_s`. The
//! renderer draws [`Predictor::render_position_m`] (predicted + offset), so the character
//! glides to the corrected path instead of snapping. Corrections larger than
//! `snap_distance_m` (teleports, respawns) snap instead.
//!
//! Performance contract: the ring is allocated once in [`Predictor::new`]; `push_input`,
//! `reconcile` and `advance_visual` never allocate. A replay costs one
//! [`movement::step`] per replayed input.
//!
//! Sequence numbers start at 1 (0 means "nothing acknowledged yet") and are `u32`: at 60 Hz
//! they last about 2.2 years, so wrap-around within one session is not handled.

use glam::Vec3;

use crate::entity::CharacterState;
use crate::input::MoveInput;
use crate::movement::{self, MovementConfig, MovementConfigError};
use crate::time::TickRate;

/// Largest accepted [`PredictionConfig::history_len`].
pub const MAX_HISTORY_LEN: usize = 4096;

/// Visual offsets shorter than this are set to exactly zero by
/// [`Predictor::advance_visual`], so the decay ends instead of creeping through denormals.
pub const VISUAL_OFFSET_EPSILON_M: f32 = 1e-4;

/// Tuning of the [`Predictor`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PredictionConfig {
    /// How many unacknowledged inputs (with their predicted states) are kept, `1..=`
    /// [`MAX_HISTORY_LEN`]. At 30 Hz the default 128 covers about 4.3 s without an ack;
    /// beyond that the oldest are evicted (see [`ReconcileOutcome::Resynced`]).
    pub history_len: usize,
    /// Time for the visual correction offset to halve, seconds. Finite, `> 0`.
    pub correction_half_life_s: f32,
    /// Corrections that move the predicted position farther than this snap instead of being
    /// smoothed, metres. Finite, `> 0`.
    pub snap_distance_m: f32,
}

impl Default for PredictionConfig {
    fn default() -> Self {
        PredictionConfig {
            history_len: 128,
            correction_half_life_s: 0.1,
            snap_distance_m: 5.0,
        }
    }
}

/// A [`PredictionConfig`] field with an unusable value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid prediction config: `{field}` {reason}")]
pub struct PredictionConfigError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl PredictionConfig {
    /// Checks every field's invariant; the error names the first bad field.
    pub fn validate(&self) -> Result<(), PredictionConfigError> {
        if !(1..=MAX_HISTORY_LEN).contains(&self.history_len) {
            return Err(PredictionConfigError {
                field: "history_len",
                reason: "must be within 1..=MAX_HISTORY_LEN (4096)",
            });
        }
        if !(self.correction_half_life_s.is_finite() && self.correction_half_life_s > 0.0) {
            return Err(PredictionConfigError {
                field: "correction_half_life_s",
                reason: "must be finite and > 0",
            });
        }
        if !(self.snap_distance_m.is_finite() && self.snap_distance_m > 0.0) {
            return Err(PredictionConfigError {
                field: "snap_distance_m",
                reason: "must be finite and > 0",
            });
        }
        Ok(())
    }
}

/// Why a [`Predictor`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PredictorError {
    /// The movement config failed [`MovementConfig::validate`].
    #[error(transparent)]
    Movement(#[from] MovementConfigError),
    /// The prediction config failed [`PredictionConfig::validate`].
    #[error(transparent)]
    Prediction(#[from] PredictionConfigError),
    /// The initial state has a NaN or infinite component.
    #[error("initial character state is not finite")]
    NonFiniteInitialState,
}

/// What [`Predictor::reconcile`] did with a server state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReconcileOutcome {
    /// The server state matched the stored prediction bit for bit; history up to the ack was
    /// dropped and nothing was replayed.
    Confirmed,
    /// Mismatch: the prediction was rewound to the server state and the later inputs were
    /// replayed; the jump went into the visual offset (or snapped, see `snapped`).
    Corrected {
        /// Inputs replayed after the acknowledged one.
        replayed_inputs: usize,
        /// Distance between the server's and the stored predicted position at the ack, m.
        position_error_m: f32,
        /// True when the jump exceeded `snap_distance_m` and the offset was cleared.
        snapped: bool,
    },
    /// The acknowledged input had already been evicted from the bounded history (no ack for
    /// longer than `history_len` inputs). The prediction was reset to the server state and
    /// the stored later inputs replayed, best effort: inputs evicted between the ack and the
    /// oldest stored one are missing from the replay, so a later ack will usually correct
    /// again and then converge exactly.
    Resynced {
        /// Inputs replayed.
        replayed_inputs: usize,
        /// True when the jump exceeded `snap_distance_m` and the offset was cleared.
        snapped: bool,
    },
    /// The ack is not newer than the last one processed (a duplicate or reordered snapshot).
    /// Nothing changed. Expected on a real network; not an error.
    Stale,
}

/// A server state [`Predictor::reconcile`] refused; the predictor is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// The server acknowledged an input sequence this client never sent: a broken or
    /// hostile server, or a predictor that was reset without telling the server.
    #[error(
        "server acknowledged input {ack_input_seq} but the last input pushed is {last_pushed_seq}"
    )]
    AckAhead {
        /// The acknowledged sequence.
        ack_input_seq: u32,
        /// The newest sequence pushed so far (0 when none).
        last_pushed_seq: u32,
    },
    /// The server state has a NaN or infinite component.
    #[error("server state for input {ack_input_seq} is not finite")]
    NonFiniteServerState {
        /// The acknowledged sequence.
        ack_input_seq: u32,
    },
}

/// One remembered input and the state predicted after applying it.
#[derive(Clone, Copy, Debug, Default)]
struct HistoryEntry {
    seq: u32,
    input: MoveInput,
    state_after: CharacterState,
}

/// Client-side predictor for one locally controlled character. See the module docs.
#[derive(Debug)]
pub struct Predictor {
    movement: MovementConfig,
    dt_s: f32,
    config: PredictionConfig,
    /// Ring storage. Invariant: `ring.len() == config.history_len`, never reallocated.
    ring: Vec<HistoryEntry>,
    /// Ring index of the oldest stored entry. Invariant: `< ring.len()`.
    head: usize,
    /// Stored entries. Invariant: `<= ring.len()`; their sequences are consecutive and end at
    /// `next_seq - 1`.
    len: usize,
    /// Sequence the next pushed input gets. Starts at 1.
    next_seq: u32,
    /// Newest acknowledged sequence (0 = none). Invariant: `< next_seq`.
    last_acked_seq: u32,
    predicted: CharacterState,
    visual_offset_m: Vec3,
    corrections: u64,
    snaps: u64,
    evicted_inputs: u64,
    last_replay_len: usize,
}

fn state_is_finite(s: &CharacterState) -> bool {
    s.position_m.is_finite() && s.velocity_mps.is_finite() && s.yaw_rad.is_finite()
}

impl Predictor {
    /// A predictor starting from `initial`, stepping at `rate`. Validates both configs and
    /// allocates the history ring once.
    pub fn new(
        movement: MovementConfig,
        rate: TickRate,
        initial: CharacterState,
        config: PredictionConfig,
    ) -> Result<Self, PredictorError> {
        movement.validate()?;
        config.validate()?;
        if !state_is_finite(&initial) {
            return Err(PredictorError::NonFiniteInitialState);
        }
        Ok(Predictor {
            movement,
            dt_s: rate.dt_s(),
            config,
            ring: vec![HistoryEntry::default(); config.history_len],
            head: 0,
            len: 0,
            next_seq: 1,
            last_acked_seq: 0,
            predicted: initial,
            visual_offset_m: Vec3::ZERO,
            corrections: 0,
            snaps: 0,
            evicted_inputs: 0,
            last_replay_len: 0,
        })
    }

    /// Applies `input` at once and returns the sequence number assigned to it (send it with
    /// the input). When the history is full the oldest unacknowledged entry is evicted.
    pub fn push_input(&mut self, input: MoveInput) -> u32 {
        let seq = self.next_seq;
        debug_assert!(
            seq < u32::MAX,
            "input sequence exhausted (no wrap-around support)"
        );
        self.next_seq = seq.wrapping_add(1);
        self.predicted = movement::step(&self.movement, &self.predicted, &input, self.dt_s);
        let cap = self.ring.len();
        if self.len == cap {
            self.head = (self.head + 1) % cap;
            self.len -= 1;
            self.evicted_inputs += 1;
        }
        let idx = (self.head + self.len) % cap;
        self.ring[idx] = HistoryEntry {
            seq,
            input,
            state_after: self.predicted,
        };
        self.len += 1;
        seq
    }

    /// The predicted simulation state after the newest input.
    #[must_use]
    pub fn predicted(&self) -> &CharacterState {
        &self.predicted
    }

    /// Unacknowledged stored inputs, oldest first, as `(seq, input)`. Double-ended and
    /// exact-size, so a sender can take the newest N with `.rev().take(n)`.
    #[must_use]
    pub fn unacked_inputs(&self) -> UnackedInputs<'_> {
        UnackedInputs {
            ring: &self.ring,
            head: self.head,
            front: 0,
            back: self.len,
        }
    }

    /// Reconciles with the server's state after input `ack_input_seq`. See
    /// [`ReconcileOutcome`] for what happens; on `Err` nothing changed. Never panics on any
    /// argument (both come from the wire).
    pub fn reconcile(
        &mut self,
        ack_input_seq: u32,
        server_state: &CharacterState,
    ) -> Result<ReconcileOutcome, ReconcileError> {
        if !state_is_finite(server_state) {
            return Err(ReconcileError::NonFiniteServerState { ack_input_seq });
        }
        let last_pushed_seq = self.next_seq - 1; // next_seq >= 1 always
        if ack_input_seq > last_pushed_seq {
            return Err(ReconcileError::AckAhead {
                ack_input_seq,
                last_pushed_seq,
            });
        }
        if ack_input_seq <= self.last_acked_seq {
            return Ok(ReconcileOutcome::Stale);
        }
        self.last_acked_seq = ack_input_seq;
        // `len <= next_seq - 1`: at most one entry per pushed sequence, so no underflow.
        let oldest_seq = self.next_seq - self.len as u32;
        if ack_input_seq < oldest_seq {
            // Evicted: every stored entry is newer than the ack.
            let (replayed_inputs, snapped) = self.replay_from(*server_state);
            self.corrections += 1;
            return Ok(ReconcileOutcome::Resynced {
                replayed_inputs,
                snapped,
            });
        }
        let k = (ack_input_seq - oldest_seq) as usize; // < len
        let cap = self.ring.len();
        let acked = self.ring[(self.head + k) % cap];
        debug_assert_eq!(acked.seq, ack_input_seq, "ring sequence invariant");
        self.head = (self.head + k + 1) % cap;
        self.len -= k + 1;
        if acked.state_after.bits_eq(server_state) {
            self.last_replay_len = 0;
            return Ok(ReconcileOutcome::Confirmed);
        }
        let position_error_m = (server_state.position_m - acked.state_after.position_m).length();
        let (replayed_inputs, snapped) = self.replay_from(*server_state);
        self.corrections += 1;
        Ok(ReconcileOutcome::Corrected {
            replayed_inputs,
            position_error_m,
            snapped,
        })
    }

    /// Resets the prediction to `start`, replays every stored input (rewriting their stored
    /// states) and moves the position jump into the visual offset, or snaps. Returns the
    /// number of inputs replayed and whether it snapped.
    fn replay_from(&mut self, start: CharacterState) -> (usize, bool) {
        let cap = self.ring.len();
        let mut state = start;
        for i in 0..self.len {
            let entry = &mut self.ring[(self.head + i) % cap];
            state = movement::step(&self.movement, &state, &entry.input, self.dt_s);
            entry.state_after = state;
        }
        let jump_m = self.predicted.position_m - state.position_m;
        self.predicted = state;
        self.last_replay_len = self.len;
        let offset_m = self.visual_offset_m + jump_m;
        // A non-finite offset (cannot happen with finite states, but cheap to guard) snaps.
        let offset_len_m = offset_m.length();
        let snapped = !offset_len_m.is_finite() || offset_len_m > self.config.snap_distance_m;
        if snapped {
            self.visual_offset_m = Vec3::ZERO;
            self.snaps += 1;
        } else {
            self.visual_offset_m = offset_m;
        }
        (self.len, snapped)
    }

    /// Decays the visual offset by `dt_s` seconds of render time: it halves every
    /// `correction_half_life_s`, and becomes exactly zero below [`VISUAL_OFFSET_EPSILON_M`].
    /// Non-positive or non-finite `dt_s` does nothing. Visual only: this uses `exp2` and is
    /// deliberately outside the deterministic simulation.
    pub fn advance_visual(&mut self, dt_s: f32) {
        if !(dt_s.is_finite() && dt_s > 0.0) {
            return;
        }
        let factor = (-dt_s / self.config.correction_half_life_s).exp2();
        self.visual_offset_m *= factor;
        if self.visual_offset_m.length() < VISUAL_OFFSET_EPSILON_M {
            self.visual_offset_m = Vec3::ZERO;
        }
    }

    /// The offset added to the predicted position for rendering, metres.
    #[must_use]
    pub fn visual_offset_m(&self) -> Vec3 {
        self.visual_offset_m
    }

    /// Where to draw the character: predicted position plus visual offset, metres.
    #[must_use]
    pub fn render_position_m(&self) -> Vec3 {
        self.predicted.position_m + self.visual_offset_m
    }

    /// Forgets all history and continues from `state` (zone transfer, respawn, server-driven
    /// teleport). Every input pushed so far counts as acknowledged; the visual offset is
    /// cleared. Sequences continue from where they were. A non-finite `state` is ignored
    /// (returns false).
    pub fn reset(&mut self, state: CharacterState) -> bool {
        if !state_is_finite(&state) {
            return false;
        }
        self.predicted = state;
        self.head = 0;
        self.len = 0;
        self.last_acked_seq = self.next_seq - 1;
        self.visual_offset_m = Vec3::ZERO;
        self.last_replay_len = 0;
        true
    }

    /// Number of mismatches corrected (including resyncs) since creation.
    #[must_use]
    pub fn corrections(&self) -> u64 {
        self.corrections
    }

    /// Number of corrections that snapped instead of smoothing.
    #[must_use]
    pub fn snaps(&self) -> u64 {
        self.snaps
    }

    /// Number of unacknowledged inputs evicted because the history was full.
    #[must_use]
    pub fn evicted_inputs(&self) -> u64 {
        self.evicted_inputs
    }

    /// Inputs replayed by the most recent `reconcile` that changed state (0 after a
    /// confirmation).
    #[must_use]
    pub fn last_replay_len(&self) -> usize {
        self.last_replay_len
    }

    /// The newest acknowledged input sequence (0 when none).
    #[must_use]
    pub fn last_acked_seq(&self) -> u32 {
        self.last_acked_seq
    }

    /// The sequence the next pushed input will get.
    #[must_use]
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// The movement config the predictor steps with.
    #[must_use]
    pub fn movement_config(&self) -> &MovementConfig {
        &self.movement
    }

    /// The fixed step, seconds.
    #[must_use]
    pub fn dt_s(&self) -> f32 {
        self.dt_s
    }
}

/// Iterator over a [`Predictor`]'s unacknowledged `(seq, input)` pairs, oldest first.
#[derive(Clone, Debug)]
pub struct UnackedInputs<'a> {
    ring: &'a [HistoryEntry],
    head: usize,
    /// Next logical index from the front. Invariant: `front <= back`.
    front: usize,
    /// One past the last logical index from the back.
    back: usize,
}

impl UnackedInputs<'_> {
    fn at(&self, logical: usize) -> (u32, MoveInput) {
        let e = &self.ring[(self.head + logical) % self.ring.len()];
        (e.seq, e.input)
    }
}

impl Iterator for UnackedInputs<'_> {
    type Item = (u32, MoveInput);

    fn next(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        let item = self.at(self.front);
        self.front += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for UnackedInputs<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front == self.back {
            return None;
        }
        self.back -= 1;
        Some(self.at(self.back))
    }
}

impl ExactSizeIterator for UnackedInputs<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Buttons;
    use std::collections::VecDeque;

    const RATE: TickRate = TickRate::DEFAULT;

    /// Deterministic pseudo-random inputs (xorshift), mostly moving, sometimes sprinting or
    /// jumping.
    struct Inputs(u64);
    impl Inputs {
        fn next(&mut self) -> MoveInput {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let r = self.0;
            MoveInput {
                forward_q: ((r & 0xFF) as u8 as i8).max(-127),
                right_q: (((r >> 8) & 0xFF) as u8 as i8).max(-127),
                yaw_q: (r >> 16) as u16,
                buttons: Buttons(
                    (((r >> 32) & 1) as u8)
                        | if (r >> 33).is_multiple_of(20) {
                            Buttons::JUMP
                        } else {
                            0
                        },
                ),
            }
        }
    }

    fn predictor(cfg: PredictionConfig) -> Predictor {
        Predictor::new(
            MovementConfig::default(),
            RATE,
            CharacterState::at(Vec3::ZERO),
            cfg,
        )
        .expect("default configs are valid")
    }

    /// A stand-in server: steps the same inputs, optionally disturbed, and acks with a delay.
    struct Server {
        state: CharacterState,
        cfg: MovementConfig,
    }
    impl Server {
        fn new() -> Self {
            Server {
                state: CharacterState::at(Vec3::ZERO),
                cfg: MovementConfig::default(),
            }
        }
        fn apply(&mut self, input: &MoveInput) -> CharacterState {
            self.state = movement::step(&self.cfg, &self.state, input, RATE.dt_s());
            self.state
        }
    }

    #[test]
    fn config_validation_names_field() {
        PredictionConfig::default().validate().unwrap();
        let e = PredictionConfig {
            history_len: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "history_len");
        let e = PredictionConfig {
            correction_half_life_s: f32::NAN,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "correction_half_life_s");
        let e = PredictionConfig {
            snap_distance_m: -1.0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "snap_distance_m");
        let bad_move = MovementConfig {
            gravity_mps2: 0.0,
            ..Default::default()
        };
        let err = Predictor::new(
            bad_move,
            RATE,
            CharacterState::default(),
            PredictionConfig::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("gravity_mps2"), "{err}");
    }

    #[test]
    fn no_corrections_when_server_agrees() {
        let mut p = predictor(PredictionConfig::default());
        let mut server = Server::new();
        let mut inputs = Inputs(7);
        // Inputs reach the server 4 ticks late; acks come back 3 ticks after that.
        let mut to_server: VecDeque<(u32, MoveInput)> = VecDeque::new();
        let mut to_client: VecDeque<(u32, CharacterState)> = VecDeque::new();
        for tick in 0..2000 {
            let i = inputs.next();
            let seq = p.push_input(i);
            to_server.push_back((seq, i));
            if tick >= 4 {
                let (seq, i) = to_server.pop_front().expect("queued 4 ticks ago");
                to_client.push_back((seq, server.apply(&i)));
            }
            if tick >= 7 {
                let (ack, s) = to_client.pop_front().expect("queued 3 ticks ago");
                assert_eq!(p.reconcile(ack, &s), Ok(ReconcileOutcome::Confirmed));
                assert_eq!(p.unacked_inputs().len(), 7);
            }
        }
        assert_eq!(p.corrections(), 0);
        assert_eq!(p.visual_offset_m(), Vec3::ZERO);
        assert_eq!(p.last_replay_len(), 0);
    }

    #[test]
    fn knockback_converges_exactly_and_smoothly() {
        const DELAY: usize = 6;
        let mut p = predictor(PredictionConfig::default());
        let mut server = Server::new();
        let mut pending: VecDeque<(u32, CharacterState)> = VecDeque::new();
        // Walk forward along +X at a constant input, far from any wall.
        let walk = MoveInput {
            forward_q: 127,
            ..Default::default()
        };
        let frame_dt_s = RATE.dt_s();
        let mut prev_render = p.render_position_m();
        let mut max_step_before_m = 0.0_f32;
        let mut max_step_during_m = 0.0_f32;
        let mut corrected_at = None;
        let knockback_m = Vec3::new(0.0, 1.0, 0.0);
        for tick in 0..120 {
            let seq = p.push_input(walk);
            let mut s = server.apply(&walk);
            if tick == 30 {
                // Server-side knockback the client could not predict.
                server.state.position_m += knockback_m;
                s = server.state;
            }
            pending.push_back((seq, s));
            if pending.len() > DELAY {
                let (ack, s) = pending.pop_front().expect("len > DELAY");
                let outcome = p.reconcile(ack, &s).expect("valid ack");
                if let ReconcileOutcome::Corrected {
                    replayed_inputs,
                    position_error_m,
                    snapped,
                } = outcome
                {
                    assert!(corrected_at.is_none(), "corrected twice");
                    corrected_at = Some(tick);
                    assert_eq!(replayed_inputs, DELAY);
                    assert_eq!(p.last_replay_len(), DELAY);
                    assert!((position_error_m - 1.0).abs() < 1e-5);
                    assert!(!snapped);
                    // The predicted state is exactly what the server will reach.
                    assert!(p.predicted().bits_eq(&server.state));
                } else {
                    assert_eq!(outcome, ReconcileOutcome::Confirmed);
                }
            }
            p.advance_visual(frame_dt_s);
            let render = p.render_position_m();
            let step_m = (render - prev_render).length();
            prev_render = render;
            if corrected_at.is_none() {
                max_step_before_m = max_step_before_m.max(step_m);
            } else {
                max_step_during_m = max_step_during_m.max(step_m);
            }
            if let Some(at) = corrected_at {
                // After ~1 s (30 ticks at 30 Hz, plus a little) the offset is below 1 mm.
                if tick >= at + 32 {
                    assert!(p.visual_offset_m().length() < 1e-3, "tick {tick}");
                }
            }
        }
        assert!(corrected_at.is_some());
        assert_eq!(p.corrections(), 1);
        assert_eq!(p.snaps(), 0);
        // A snap would move the render position by the full metre in one frame; smoothing
        // spreads it: the worst frame is the normal walking step plus a fifth of the jump.
        let walk_step_m = 4.0 * frame_dt_s;
        assert!((max_step_before_m - walk_step_m).abs() < 1e-4);
        assert!(
            max_step_during_m < walk_step_m + 0.25 * knockback_m.length(),
            "max render step {max_step_during_m}"
        );
        assert!(p.predicted().bits_eq(&server.state));
    }

    #[test]
    fn large_corrections_snap() {
        let mut p = predictor(PredictionConfig::default());
        let still = MoveInput::default();
        let seq = p.push_input(still);
        p.push_input(still);
        let teleported = CharacterState::at(Vec3::new(100.0, 0.0, 0.0));
        let outcome = p.reconcile(seq, &teleported).unwrap();
        assert!(matches!(
            outcome,
            ReconcileOutcome::Corrected {
                snapped: true,
                replayed_inputs: 1,
                ..
            }
        ));
        assert_eq!(p.visual_offset_m(), Vec3::ZERO);
        assert_eq!(p.render_position_m(), p.predicted().position_m);
        assert_eq!(p.snaps(), 1);
    }

    #[test]
    fn history_is_bounded_and_evicted_acks_resync() {
        let cfg = PredictionConfig {
            history_len: 16,
            ..Default::default()
        };
        let mut p = predictor(cfg);
        let mut server = Server::new();
        let mut inputs = Inputs(99);
        let mut server_states = Vec::new();
        let mut sent = Vec::new();
        for _ in 0..40 {
            let i = inputs.next();
            sent.push(i);
            p.push_input(i);
            server_states.push(server.apply(&i));
        }
        assert_eq!(p.unacked_inputs().len(), 16);
        assert_eq!(p.evicted_inputs(), 24);
        let seqs: Vec<u32> = p.unacked_inputs().map(|(s, _)| s).collect();
        assert_eq!(seqs, (25..=40).collect::<Vec<_>>());
        let newest: Vec<u32> = p.unacked_inputs().rev().take(3).map(|(s, _)| s).collect();
        assert_eq!(newest, vec![40, 39, 38]);
        assert_eq!(p.unacked_inputs().nth(2).map(|(_, i)| i), Some(sent[26]));

        // Ack 10 was evicted: best-effort resync; inputs 11..=24 are missing from the replay.
        let outcome = p.reconcile(10, &server_states[9]).unwrap();
        assert!(matches!(
            outcome,
            ReconcileOutcome::Resynced {
                replayed_inputs: 16,
                ..
            }
        ));
        assert_eq!(p.last_replay_len(), 16);
        assert_eq!(p.unacked_inputs().len(), 16);
        // The next in-history ack corrects, after which the prediction is exact.
        let outcome = p.reconcile(30, &server_states[29]).unwrap();
        assert!(matches!(
            outcome,
            ReconcileOutcome::Corrected {
                replayed_inputs: 10,
                ..
            }
        ));
        assert!(p.predicted().bits_eq(&server_states[39]));
        assert_eq!(
            p.reconcile(35, &server_states[34]),
            Ok(ReconcileOutcome::Confirmed)
        );
    }

    #[test]
    fn stale_duplicate_and_bogus_acks() {
        let mut p = predictor(PredictionConfig::default());
        let mut server = Server::new();
        let mut inputs = Inputs(3);
        let mut states = Vec::new();
        for _ in 0..10 {
            let i = inputs.next();
            p.push_input(i);
            states.push(server.apply(&i));
        }
        assert_eq!(p.reconcile(0, &states[0]), Ok(ReconcileOutcome::Stale));
        assert_eq!(p.reconcile(5, &states[4]), Ok(ReconcileOutcome::Confirmed));
        // Duplicate and reordered (older) acks change nothing, even with a different state.
        let before = *p.predicted();
        assert_eq!(p.reconcile(5, &states[4]), Ok(ReconcileOutcome::Stale));
        assert_eq!(
            p.reconcile(3, &CharacterState::at(Vec3::splat(9.0))),
            Ok(ReconcileOutcome::Stale)
        );
        assert!(p.predicted().bits_eq(&before));
        // An ack for an input never sent is an error and changes nothing.
        assert_eq!(
            p.reconcile(11, &states[9]),
            Err(ReconcileError::AckAhead {
                ack_input_seq: 11,
                last_pushed_seq: 10
            })
        );
        assert_eq!(
            p.reconcile(u32::MAX, &states[9]),
            Err(ReconcileError::AckAhead {
                ack_input_seq: u32::MAX,
                last_pushed_seq: 10
            })
        );
        let mut nan = states[9];
        nan.velocity_mps.y = f32::NAN;
        assert_eq!(
            p.reconcile(10, &nan),
            Err(ReconcileError::NonFiniteServerState { ack_input_seq: 10 })
        );
        assert_eq!(p.last_acked_seq(), 5);
        assert_eq!(p.unacked_inputs().len(), 5);
        assert_eq!(p.corrections(), 0);
        assert!(p.predicted().bits_eq(&before));
        // The good ack still works afterwards.
        assert_eq!(p.reconcile(10, &states[9]), Ok(ReconcileOutcome::Confirmed));
        assert_eq!(p.unacked_inputs().len(), 0);
    }

    #[test]
    fn reset_forgets_history() {
        let mut p = predictor(PredictionConfig::default());
        for _ in 0..5 {
            p.push_input(MoveInput::default());
        }
        assert!(!p.reset(CharacterState::at(Vec3::NAN)));
        assert!(p.reset(CharacterState::at(Vec3::new(5.0, 5.0, 0.0))));
        assert_eq!(p.unacked_inputs().len(), 0);
        assert_eq!(
            p.reconcile(3, &CharacterState::default()),
            Ok(ReconcileOutcome::Stale)
        );
        assert_eq!(p.push_input(MoveInput::default()), 6);
    }

    #[test]
    fn visual_offset_ignores_bad_dt_and_reaches_zero() {
        let mut p = predictor(PredictionConfig::default());
        let seq = p.push_input(MoveInput::default());
        p.reconcile(seq, &CharacterState::at(Vec3::new(0.0, 2.0, 0.0)))
            .unwrap();
        assert_eq!(p.visual_offset_m(), Vec3::new(0.0, -2.0, 0.0));
        assert_eq!(p.render_position_m(), Vec3::ZERO);
        p.advance_visual(f32::NAN);
        p.advance_visual(-1.0);
        p.advance_visual(0.0);
        assert_eq!(p.visual_offset_m(), Vec3::new(0.0, -2.0, 0.0));
        p.advance_visual(0.1);
        assert!((p.visual_offset_m().y + 1.0).abs() < 1e-5);
        for _ in 0..200 {
            p.advance_visual(1.0 / 60.0);
        }
        assert_eq!(p.visual_offset_m(), Vec3::ZERO);
    }
}
