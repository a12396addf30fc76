//! `mmo_interpolator`: the interpolation buffer of one remote entity
//! (`mmo_core::interpolation::InterpolationBuffer`): push server states as they arrive,
//! sample once per rendered frame. The entity is drawn slightly in the past with an
//! adaptive delay driven by the measured jitter, extrapolated (bounded) when late.
//!
//! Times are microseconds: `server_time_us` is the server's timestamp of the state (for a
//! snapshot, the start of its tick), `arrival_now_us`/`now_us` the caller's local monotonic
//! clock. Both clocks only need to be monotonic, not synchronised.

use mmo_core::interpolation::{
    InterpOutput, InterpSample, InterpolationBuffer, InterpolationConfig, PushOutcome,
};

use crate::boundary::{self, FfiError, Out};
use crate::result::mmo_result;
use crate::types::mmo_vec3;

/// Tuning of an interpolator. Start from `mmo_interpolation_config_default`. Fields not
/// listed here (estimator gains, slew, resync) use the core's defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct mmo_interpolation_config {
    /// Samples kept, 2..=1024. Default 32.
    pub capacity: u32,
    /// Smallest render delay, microseconds. Default 20,000.
    pub min_delay_us: u64,
    /// Largest render delay, microseconds (min_delay_us..=10,000,000; must cover the
    /// slowest send rate plus jitter). Default 1,000,000.
    pub max_delay_us: u64,
    /// Longest extrapolation past the newest sample before holding, microseconds.
    /// Default 250,000.
    pub max_extrapolation_us: u64,
    /// Consecutive samples further apart than this snap instead of sliding, metres (> 0).
    /// Default 25.
    pub teleport_distance_m: f32,
    /// Consecutive samples implying a higher speed snap, m/s (> 0). Default 50.
    pub teleport_speed_mps: f32,
}

impl From<&InterpolationConfig> for mmo_interpolation_config {
    fn from(c: &InterpolationConfig) -> Self {
        mmo_interpolation_config {
            capacity: u32::try_from(c.capacity).unwrap_or(u32::MAX),
            min_delay_us: c.min_delay_us,
            max_delay_us: c.max_delay_us,
            max_extrapolation_us: c.max_extrapolation_us,
            teleport_distance_m: c.teleport_distance_m,
            teleport_speed_mps: c.teleport_speed_mps,
        }
    }
}

impl mmo_interpolation_config {
    pub(crate) fn to_core(self) -> InterpolationConfig {
        InterpolationConfig {
            capacity: usize::try_from(self.capacity).unwrap_or(usize::MAX),
            min_delay_us: self.min_delay_us,
            max_delay_us: self.max_delay_us,
            max_extrapolation_us: self.max_extrapolation_us,
            teleport_distance_m: self.teleport_distance_m,
            teleport_speed_mps: self.teleport_speed_mps,
            ..InterpolationConfig::default()
        }
    }
}

/// What `mmo_interpolator_push` did with a sample. None of these is an error: the network
/// produces all of them.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_push_outcome {
    /// Stored (possibly between older samples when it arrived out of order).
    Accepted = 0,
    /// A sample with the same server time is already stored; ignored.
    Duplicate = 1,
    /// Not newer than what was already rendered past; ignored (counts as jitter).
    Stale = 2,
    /// Non-finite position or yaw; ignored.
    Invalid = 3,
    /// Transit time wildly off the estimate; ignored unless it repeats.
    Outlier = 4,
    /// Repeated outliers: the server clock changed, the buffer restarted from this sample.
    Resynced = 5,
}

impl From<PushOutcome> for mmo_push_outcome {
    fn from(o: PushOutcome) -> Self {
        match o {
            PushOutcome::Accepted => mmo_push_outcome::Accepted,
            PushOutcome::Duplicate => mmo_push_outcome::Duplicate,
            PushOutcome::Stale => mmo_push_outcome::Stale,
            PushOutcome::Invalid => mmo_push_outcome::Invalid,
            PushOutcome::Outlier => mmo_push_outcome::Outlier,
            PushOutcome::Resynced => mmo_push_outcome::Resynced,
        }
    }
}

/// Where to draw a remote entity this frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct mmo_interp_output {
    /// Position of the capsule's base, metres.
    pub position_m: mmo_vec3,
    /// Facing, radians in `[0, 2*pi)`.
    pub yaw_rad: f32,
    /// 1 when past the newest sample (extrapolated, then held), else 0.
    pub extrapolating: u8,
}

impl From<InterpOutput> for mmo_interp_output {
    fn from(o: InterpOutput) -> Self {
        mmo_interp_output {
            position_m: o.position_m.into(),
            yaw_rad: o.yaw_rad,
            extrapolating: u8::from(o.extrapolating),
        }
    }
}

/// Opaque interpolation buffer of one remote entity.
pub struct mmo_interpolator {
    inner: InterpolationBuffer,
}

/// Writes the default interpolation config into `*out`.
///
/// `MMO_RESULT_NULL_ARGUMENT` when `out` is NULL. Thread-safe.
///
/// # Safety
/// `out` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_interpolation_config_default(
    out: *mut mmo_interpolation_config,
) -> mmo_result {
    boundary::guard(|| {
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write((&InterpolationConfig::default()).into()) };
        Ok(())
    })
}

/// Creates an empty interpolator with `*config` (copied). On success `*out` receives a new
/// handle owned by the caller: free it with `mmo_interpolator_free`.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_CONFIG` (the last error names the
/// field). Thread-safe (creates independent state).
///
/// # Safety
/// `config` must be NULL or readable; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_interpolator_new(
    config: *const mmo_interpolation_config,
    out: *mut *mut mmo_interpolator,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or readable.
        let config = unsafe { boundary::in_ref(config, "config") }?;
        let out = Out::new(out, "out")?;
        let inner = InterpolationBuffer::new(config.to_core()).map_err(FfiError::config)?;
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(boundary::into_handle(mmo_interpolator { inner })) };
        Ok(())
    })
}

/// Frees an interpolator. NULL is a no-op. The handle must not be used afterwards.
///
/// # Safety
/// `interpolator` must be NULL or a live handle, not used concurrently.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_interpolator_free(interpolator: *mut mmo_interpolator) {
    boundary::guard_value((), || {
        // SAFETY: per the caller, NULL or a live handle from `mmo_interpolator_new`.
        unsafe { boundary::free_handle(interpolator) }
    });
}

/// Stores the state `*position_m`/`yaw_rad` that the server stamped `server_time_us`, which
/// arrived at local time `arrival_now_us`, and writes what happened to `*out_outcome`.
///
/// Values come from the network, so a non-finite sample is not an error: the outcome is
/// `MMO_PUSH_OUTCOME_INVALID`. `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Game thread
/// only.
///
/// # Safety
/// `interpolator` must be NULL or a live handle; `position_m` NULL or readable;
/// `out_outcome` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_interpolator_push(
    interpolator: *mut mmo_interpolator,
    server_time_us: u64,
    arrival_now_us: u64,
    position_m: *const mmo_vec3,
    yaw_rad: f32,
    out_outcome: *mut mmo_push_outcome,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let i = unsafe { boundary::in_mut(interpolator, "interpolator") }?;
        // SAFETY: per the caller, NULL or readable.
        let position_m = unsafe { boundary::in_ref(position_m, "position_m") }?;
        let out_outcome = Out::new(out_outcome, "out_outcome")?;
        let sample = InterpSample {
            position_m: position_m.to_vec3(),
            yaw_rad,
        };
        let outcome = i.inner.push(server_time_us, arrival_now_us, sample);
        // SAFETY: valid per the caller.
        unsafe { out_outcome.write(outcome.into()) };
        Ok(())
    })
}

/// Advances the render clock to local time `now_us` (call once per rendered frame with a
/// monotonic clock) and writes where to draw the entity to `*out`.
///
/// Until a second sample has arrived the first one is returned as is.
/// `MMO_RESULT_EMPTY` before any sample (nothing written); `MMO_RESULT_NULL_ARGUMENT` for
/// NULL pointers. Game thread only.
///
/// # Safety
/// `interpolator` must be NULL or a live handle; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_interpolator_sample(
    interpolator: *mut mmo_interpolator,
    now_us: u64,
    out: *mut mmo_interp_output,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let i = unsafe { boundary::in_mut(interpolator, "interpolator") }?;
        let out = Out::new(out, "out")?;
        let sampled = i
            .inner
            .sample(now_us)
            .ok_or_else(|| FfiError::new(mmo_result::Empty, "no sample pushed yet"))?;
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(sampled.into()) };
        Ok(())
    })
}

/// Forgets all samples and clock estimates (the entity left and re-entered interest).
///
/// `MMO_RESULT_NULL_ARGUMENT` when `interpolator` is NULL. Game thread only.
///
/// # Safety
/// `interpolator` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_interpolator_clear(interpolator: *mut mmo_interpolator) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let i = unsafe { boundary::in_mut(interpolator, "interpolator") }?;
        i.inner.clear();
        Ok(())
    })
}
