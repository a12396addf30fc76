//! `mmo_predictor`: client-side prediction and reconciliation of the local character
//! (`mmo_core::prediction::Predictor`), plus its configuration structs.
//!
//! Frame loop: `mmo_predictor_push_input` once per simulation tick (send the returned
//! sequence with the input), `mmo_predictor_reconcile` for each snapshot carrying the owner's
//! state, `mmo_predictor_advance_visual` once per rendered frame, then draw at
//! `mmo_predictor_render_position`.

use glam::Vec2;
use mmo_core::movement::{Aabb, MovementConfig, MovementConfigError, ZoneBounds, blocker_world};
use mmo_core::prediction::{
    PredictionConfig, Predictor, PredictorError, ReconcileError, ReconcileOutcome,
};
use mmo_core::time::TickRate;
use mmo_core::validation::validate_input;

use crate::boundary::{self, FfiError, Out, OutSlice};
use crate::result::mmo_result;
use crate::types::{mmo_character_state, mmo_move_input, mmo_vec3};

/// Tuning of the movement step. Client and server must use identical values (the server
/// sends them at login), or every prediction mismatches. Start from
/// `mmo_movement_config_default`; blockers are passed separately to `mmo_predictor_new`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct mmo_movement_config {
    /// Top horizontal speed when walking, m/s (> 0).
    pub walk_speed_mps: f32,
    /// Top horizontal speed when sprinting, m/s (>= walk_speed_mps).
    pub sprint_speed_mps: f32,
    /// Horizontal acceleration on the ground, m/s^2 (> 0).
    pub ground_accel_mps2: f32,
    /// Horizontal deceleration on the ground without input, m/s^2 (>= 0).
    pub braking_decel_mps2: f32,
    /// Fraction of the ground acceleration available in the air, 0..=1.
    pub air_control: f32,
    /// Downward acceleration, m/s^2 (> 0).
    pub gravity_mps2: f32,
    /// Upward speed of a jump, m/s (>= 0).
    pub jump_speed_mps: f32,
    /// Largest downward speed, m/s (> 0).
    pub max_fall_speed_mps: f32,
    /// Height of the ground plane, metres.
    pub ground_z_m: f32,
    /// Lowest X of the playable rectangle, metres.
    pub bounds_min_x_m: f32,
    /// Lowest Y of the playable rectangle, metres.
    pub bounds_min_y_m: f32,
    /// Highest X of the playable rectangle, metres.
    pub bounds_max_x_m: f32,
    /// Highest Y of the playable rectangle, metres.
    pub bounds_max_y_m: f32,
    /// Radius of the character's capsule, metres (> 0).
    pub radius_m: f32,
    /// Half the height of the character's capsule, metres (>= radius_m).
    pub half_height_m: f32,
    /// Highest ledge walked up without jumping, metres (0 <= value < 2 * half_height_m).
    pub max_step_height_m: f32,
    /// Smallest `z` of a surface normal the character can stand on: the cosine of the
    /// steepest walkable slope, (0, 1]. Use the server's exact value.
    pub walkable_floor_z: f32,
}

impl From<&MovementConfig> for mmo_movement_config {
    fn from(c: &MovementConfig) -> Self {
        mmo_movement_config {
            walk_speed_mps: c.walk_speed_mps,
            sprint_speed_mps: c.sprint_speed_mps,
            ground_accel_mps2: c.ground_accel_mps2,
            braking_decel_mps2: c.braking_decel_mps2,
            air_control: c.air_control,
            gravity_mps2: c.gravity_mps2,
            jump_speed_mps: c.jump_speed_mps,
            max_fall_speed_mps: c.max_fall_speed_mps,
            ground_z_m: c.ground_z_m,
            bounds_min_x_m: c.bounds.min_xy_m.x,
            bounds_min_y_m: c.bounds.min_xy_m.y,
            bounds_max_x_m: c.bounds.max_xy_m.x,
            bounds_max_y_m: c.bounds.max_xy_m.y,
            radius_m: c.radius_m,
            half_height_m: c.half_height_m,
            max_step_height_m: c.max_step_height_m,
            walkable_floor_z: c.walkable_floor_z,
        }
    }
}

impl mmo_movement_config {
    /// The core config, with the blocker boxes as its collision world (an error names the
    /// first bad box as `blockers[i]`).
    fn to_core(self, blockers: &[mmo_aabb]) -> Result<MovementConfig, MovementConfigError> {
        let boxes: Vec<Aabb> = blockers
            .iter()
            .map(|b| Aabb::new(b.min_m.to_vec3(), b.max_m.to_vec3()))
            .collect();
        Ok(MovementConfig {
            walk_speed_mps: self.walk_speed_mps,
            sprint_speed_mps: self.sprint_speed_mps,
            ground_accel_mps2: self.ground_accel_mps2,
            braking_decel_mps2: self.braking_decel_mps2,
            air_control: self.air_control,
            gravity_mps2: self.gravity_mps2,
            jump_speed_mps: self.jump_speed_mps,
            max_fall_speed_mps: self.max_fall_speed_mps,
            ground_z_m: self.ground_z_m,
            bounds: ZoneBounds {
                min_xy_m: Vec2::new(self.bounds_min_x_m, self.bounds_min_y_m),
                max_xy_m: Vec2::new(self.bounds_max_x_m, self.bounds_max_y_m),
            },
            radius_m: self.radius_m,
            half_height_m: self.half_height_m,
            max_step_height_m: self.max_step_height_m,
            walkable_floor_z: self.walkable_floor_z,
            geometry: blocker_world(&boxes)?,
        })
    }
}

/// A static axis-aligned blocker box, metres (`min_m < max_m` on every axis).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct mmo_aabb {
    /// Lowest corner.
    pub min_m: mmo_vec3,
    /// Highest corner.
    pub max_m: mmo_vec3,
}

/// Tuning of the predictor itself. Start from `mmo_prediction_config_default`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct mmo_prediction_config {
    /// Simulation tick rate, Hz (10..=60; the server's rate). Default 30.
    pub tick_rate_hz: u32,
    /// Unacknowledged inputs kept for replay, 1..=4096. Default 128.
    pub history_len: u32,
    /// Time for the visual correction offset to halve, seconds (> 0). Default 0.1.
    pub correction_half_life_s: f32,
    /// Corrections longer than this snap instead of gliding, metres (> 0). Default 5.
    pub snap_distance_m: f32,
}

/// What `mmo_predictor_reconcile` did (`mmo_reconcile_result.outcome`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_reconcile_outcome {
    /// The server state matched the prediction bit for bit; nothing replayed.
    Confirmed = 0,
    /// Mismatch: rewound to the server state and replayed the later inputs.
    Corrected = 1,
    /// The acknowledged input had been evicted from the history; reset and replayed what
    /// was stored (best effort).
    Resynced = 2,
    /// The ack is not newer than the last one processed (duplicate or reordered snapshot);
    /// nothing changed. Expected on a real network.
    Stale = 3,
}

/// Details of a reconciliation.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct mmo_reconcile_result {
    /// What happened.
    pub outcome: mmo_reconcile_outcome,
    /// Inputs replayed after the acknowledged one (0 unless corrected or resynced).
    pub replayed_inputs: u32,
    /// Distance between the server's and the predicted position at the ack, metres (0
    /// unless corrected).
    pub position_error_m: f32,
    /// 1 when the correction snapped instead of being smoothed, else 0.
    pub snapped: u8,
}

impl From<ReconcileOutcome> for mmo_reconcile_result {
    fn from(o: ReconcileOutcome) -> Self {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let (outcome, replayed_inputs, position_error_m, snapped) = match o {
            ReconcileOutcome::Confirmed => (mmo_reconcile_outcome::Confirmed, 0, 0.0, false),
            ReconcileOutcome::Corrected {
                replayed_inputs,
                position_error_m,
                snapped,
            } => (
                mmo_reconcile_outcome::Corrected,
                count(replayed_inputs),
                position_error_m,
                snapped,
            ),
            ReconcileOutcome::Resynced {
                replayed_inputs,
                snapped,
            } => (
                mmo_reconcile_outcome::Resynced,
                count(replayed_inputs),
                0.0,
                snapped,
            ),
            ReconcileOutcome::Stale => (mmo_reconcile_outcome::Stale, 0, 0.0, false),
        };
        mmo_reconcile_result {
            outcome,
            replayed_inputs,
            position_error_m,
            snapped: u8::from(snapped),
        }
    }
}

/// Opaque client-side predictor of the locally controlled character.
pub struct mmo_predictor {
    inner: Predictor,
}

/// Writes the core's default movement config into `*out`.
///
/// `MMO_RESULT_NULL_ARGUMENT` when `out` is NULL. Thread-safe.
///
/// # Safety
/// `out` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_movement_config_default(out: *mut mmo_movement_config) -> mmo_result {
    boundary::guard(|| {
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write((&MovementConfig::default()).into()) };
        Ok(())
    })
}

/// Writes the default predictor config (30 Hz, 128 inputs, 0.1 s half-life, 5 m snap) into
/// `*out`.
///
/// `MMO_RESULT_NULL_ARGUMENT` when `out` is NULL. Thread-safe.
///
/// # Safety
/// `out` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_prediction_config_default(
    out: *mut mmo_prediction_config,
) -> mmo_result {
    boundary::guard(|| {
        let out = Out::new(out, "out")?;
        let d = PredictionConfig::default();
        let value = mmo_prediction_config {
            tick_rate_hz: TickRate::DEFAULT.hz(),
            history_len: u32::try_from(d.history_len).unwrap_or(u32::MAX),
            correction_half_life_s: d.correction_half_life_s,
            snap_distance_m: d.snap_distance_m,
        };
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(value) };
        Ok(())
    })
}

/// Creates a predictor starting at `*initial`, stepping with `*movement` (plus
/// `blocker_count` blockers at `blockers`) at `config->tick_rate_hz`.
///
/// On success `*out` receives a new handle owned by the caller: free it with
/// `mmo_predictor_free`. `blockers` may be NULL when `blocker_count` is 0; the configs and
/// blockers are copied, not borrowed.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT` (any NULL pointer, or `blockers` NULL with a non-zero
/// count), `MMO_RESULT_INVALID_CONFIG` (a config field or blocker out of range; the last
/// error names it), `MMO_RESULT_INVALID_ARGUMENT` (`initial` non-finite or `on_ground` not
/// 0/1). Thread-safe (creates independent state).
///
/// # Safety
/// Each pointer must be NULL or valid for reads (`out`: one write); `blockers` valid for
/// `blocker_count` elements.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_predictor_new(
    movement: *const mmo_movement_config,
    blockers: *const mmo_aabb,
    blocker_count: usize,
    config: *const mmo_prediction_config,
    initial: *const mmo_character_state,
    out: *mut *mut mmo_predictor,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: valid per the caller's contract above (as are the three reads below).
        let movement = unsafe { boundary::in_ref(movement, "movement") }?;
        // SAFETY: see above.
        let blockers = unsafe { boundary::in_slice(blockers, blocker_count, "blockers") }?;
        // SAFETY: see above.
        let config = unsafe { boundary::in_ref(config, "config") }?;
        // SAFETY: see above.
        let initial = unsafe { boundary::in_ref(initial, "initial") }?;
        let out = Out::new(out, "out")?;
        let rate = TickRate::new(config.tick_rate_hz).map_err(FfiError::config)?;
        let prediction = PredictionConfig {
            history_len: usize::try_from(config.history_len).unwrap_or(usize::MAX),
            correction_half_life_s: config.correction_half_life_s,
            snap_distance_m: config.snap_distance_m,
        };
        let initial = initial.to_core("initial")?;
        let movement = movement.to_core(blockers).map_err(FfiError::config)?;
        let inner = Predictor::new(movement, rate, initial, prediction).map_err(|e| match e {
            PredictorError::NonFiniteInitialState => FfiError::invalid("initial", e),
            other => FfiError::config(other),
        })?;
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(boundary::into_handle(mmo_predictor { inner })) };
        Ok(())
    })
}

/// Frees a predictor. NULL is a no-op. The handle must not be used afterwards.
///
/// # Safety
/// `predictor` must be NULL or a live handle from `mmo_predictor_new`, not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_predictor_free(predictor: *mut mmo_predictor) {
    boundary::guard_value((), || {
        // SAFETY: per the caller, NULL or a live handle from `mmo_predictor_new`.
        unsafe { boundary::free_handle(predictor) }
    });
}

/// Applies `*input` at once and writes the sequence number assigned to it to `*out_seq`
/// (send it with the input; sequences start at 1).
///
/// The input is checked like the server checks it first: an axis of `-128`, a vector
/// longer than 1 or unknown button bits give `MMO_RESULT_INVALID_ARGUMENT` (the server would
/// reject it, so predicting it would only diverge). `MMO_RESULT_NULL_ARGUMENT` for NULL
/// pointers. Game thread only (the handle is not thread-safe).
///
/// # Safety
/// `predictor` must be NULL or a live handle; `input` NULL or readable; `out_seq` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_predictor_push_input(
    predictor: *mut mmo_predictor,
    input: *const mmo_move_input,
    out_seq: *mut u32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let p = unsafe { boundary::in_mut(predictor, "predictor") }?;
        // SAFETY: per the caller, NULL or readable.
        let input = unsafe { boundary::in_ref(input, "input") }?;
        let out_seq = Out::new(out_seq, "out_seq")?;
        let input = (*input).into();
        validate_input(&input).map_err(|r| FfiError::invalid("input", r))?;
        let seq = p.inner.push_input(input);
        // SAFETY: `out_seq` is valid per the caller.
        unsafe { out_seq.write(seq) };
        Ok(())
    })
}

/// Writes the predicted simulation state after the newest input to `*out`.
///
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Game thread only.
///
/// # Safety
/// `predictor` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_predictor_predicted(
    predictor: *const mmo_predictor,
    out: *mut mmo_character_state,
) -> mmo_result {
    // SAFETY: per the caller, `predictor` is NULL or a live handle, `out` NULL or writable.
    unsafe { boundary::getter(predictor, "predictor", out, |p| p.inner.predicted().into()) }
}

/// Reconciles with the server's state `*server_state` after input `ack_input_seq` (both
/// from a snapshot) and writes what happened to `*out`.
///
/// Errors (the predictor is unchanged): `MMO_RESULT_NULL_ARGUMENT`,
/// `MMO_RESULT_INVALID_ARGUMENT` (server state non-finite or `on_ground` not 0/1),
/// `MMO_RESULT_ACK_AHEAD` (the server acknowledged an input never pushed). A duplicate or
/// reordered snapshot is not an error: `outcome` is `MMO_RECONCILE_OUTCOME_STALE`.
/// Game thread only.
///
/// # Safety
/// `predictor` must be NULL or a live handle; `server_state` NULL or readable; `out` NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_predictor_reconcile(
    predictor: *mut mmo_predictor,
    ack_input_seq: u32,
    server_state: *const mmo_character_state,
    out: *mut mmo_reconcile_result,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let p = unsafe { boundary::in_mut(predictor, "predictor") }?;
        // SAFETY: per the caller, NULL or readable.
        let state = unsafe { boundary::in_ref(server_state, "server_state") }?;
        let out = Out::new(out, "out")?;
        let state = state.to_core("server_state")?;
        let outcome = p
            .inner
            .reconcile(ack_input_seq, &state)
            .map_err(|e| match e {
                ReconcileError::AckAhead { .. } => {
                    FfiError::new(mmo_result::AckAhead, e.to_string())
                }
                ReconcileError::NonFiniteServerState { .. } => FfiError::invalid("server_state", e),
            })?;
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(outcome.into()) };
        Ok(())
    })
}

/// Decays the visual correction offset by `dt_s` seconds of render time (call once per
/// rendered frame). Visual only; never affects the simulation.
///
/// `MMO_RESULT_NULL_ARGUMENT` when `predictor` is NULL; `MMO_RESULT_INVALID_ARGUMENT` when
/// `dt_s` is negative or non-finite (0 is accepted and does nothing). Game thread only.
///
/// # Safety
/// `predictor` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_predictor_advance_visual(
    predictor: *mut mmo_predictor,
    dt_s: f32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let p = unsafe { boundary::in_mut(predictor, "predictor") }?;
        if boundary::finite(dt_s, "dt_s")? < 0.0 {
            return Err(FfiError::invalid("dt_s", "must be >= 0"));
        }
        p.inner.advance_visual(dt_s);
        Ok(())
    })
}

/// Writes the current visual correction offset (added to the predicted position for
/// rendering), metres, to `*out`.
///
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Game thread only.
///
/// # Safety
/// `predictor` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_predictor_visual_offset(
    predictor: *const mmo_predictor,
    out: *mut mmo_vec3,
) -> mmo_result {
    // SAFETY: per the caller, `predictor` is NULL or a live handle, `out` NULL or writable.
    unsafe {
        boundary::getter(predictor, "predictor", out, |p| {
            p.inner.visual_offset_m().into()
        })
    }
}

/// Writes where to draw the character (predicted position plus visual offset), metres, to
/// `*out`.
///
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Game thread only.
///
/// # Safety
/// `predictor` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_predictor_render_position(
    predictor: *const mmo_predictor,
    out: *mut mmo_vec3,
) -> mmo_result {
    // SAFETY: per the caller, `predictor` is NULL or a live handle, `out` NULL or writable.
    unsafe {
        boundary::getter(predictor, "predictor", out, |p| {
            p.inner.render_position_m().into()
        })
    }
}

/// Forgets all history and continues from `*state` (zone transfer, respawn, server-driven
/// teleport): every input pushed so far counts as acknowledged, the visual offset is
/// cleared, sequences continue.
///
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers; `MMO_RESULT_INVALID_ARGUMENT` when `state`
/// is non-finite or `on_ground` is not 0/1 (the predictor is unchanged). Game thread only.
///
/// # Safety
/// `predictor` must be NULL or a live handle; `state` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_predictor_reset(
    predictor: *mut mmo_predictor,
    state: *const mmo_character_state,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let p = unsafe { boundary::in_mut(predictor, "predictor") }?;
        // SAFETY: per the caller, NULL or readable.
        let state = unsafe { boundary::in_ref(state, "state") }?;
        let state = state.to_core("state")?;
        if p.inner.reset(state) {
            Ok(())
        } else {
            Err(FfiError::invalid("state", "must be finite"))
        }
    })
}

/// Copies the newest unacknowledged inputs (oldest first) into `out_inputs`, at most
/// `capacity` of them, for building an input datagram with redundancy: `*out_count`
/// receives how many were written and `*out_first_seq` the sequence of the first one (0
/// when none are unacknowledged).
///
/// `out_inputs` may be NULL when `capacity` is 0. `MMO_RESULT_NULL_ARGUMENT` for NULL
/// pointers. Game thread only.
///
/// # Safety
/// `predictor` must be NULL or a live handle; `out_inputs` NULL or writable for `capacity`
/// elements; `out_count` and `out_first_seq` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_predictor_unacked_inputs(
    predictor: *const mmo_predictor,
    out_inputs: *mut mmo_move_input,
    capacity: usize,
    out_count: *mut usize,
    out_first_seq: *mut u32,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live handle.
        let p = unsafe { boundary::in_ref(predictor, "predictor") }?;
        let out_inputs = OutSlice::new(out_inputs, capacity, "out_inputs")?;
        let out_count = Out::new(out_count, "out_count")?;
        let out_first_seq = Out::new(out_first_seq, "out_first_seq")?;
        let unacked = p.inner.unacked_inputs();
        let skip = unacked.len().saturating_sub(capacity);
        let newest = unacked.skip(skip);
        let count = newest.len();
        let first_seq = newest.clone().next().map_or(0, |(seq, _)| seq);
        // Written straight into the caller's array: no allocation (called every frame).
        // SAFETY: `out_inputs` is valid for `capacity >= count` elements.
        unsafe { out_inputs.write_iter(newest.map(|(_, i)| mmo_move_input::from(i)))? };
        // SAFETY: valid per the caller.
        unsafe { out_count.write(count) };
        // SAFETY: valid per the caller.
        unsafe { out_first_seq.write(first_seq) };
        Ok(())
    })
}
