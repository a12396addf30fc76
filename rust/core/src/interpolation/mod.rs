//! Remote-entity interpolation: each remote entity is drawn slightly in the past, between
//! two received server states, so that it moves smoothly despite a network that delivers
//! states late, irregularly, out of order or not at all.
//!
//! - [`InterpolationBuffer`]: the per-entity sample buffer (bounded) with the render logic:
//!   linear interpolation of position, shortest-arc interpolation of yaw, bounded
//!   extrapolation from the last velocity when samples are late, then hold; teleports
//!   (implausible distance or speed between samples) snap instead of sweeping through space.
//! - [`RenderClock`]: the adaptive render delay. It tracks the offset between the server's
//!   timestamps and local arrival times and the jitter of that offset (EWMA mean and mean
//!   deviation), and the entity's sample spacing (30, 10 or 2 Hz depending on its priority
//!   tier). It renders at `server_now_estimate - delay` with
//!   `delay = interval + k * jitter` clamped to `[min, max]`, converging by running slightly
//!   slower or faster than real time, so rendered time never goes backwards.
//!
//! Sans-IO: the caller passes local time (`now_us`, `arrival_now_us`) into every call.

mod buffer;
mod clock;
mod config;
mod sample;

pub use buffer::InterpolationBuffer;
pub use clock::RenderClock;
pub use config::{InterpolationConfig, InterpolationConfigError};
pub use sample::{InterpOutput, InterpSample, PushOutcome, lerp_angle_rad, wrap_angle_rad};

#[cfg(test)]
mod tests;
