//! Server-side lag compensation: a bounded history of hitbox capsules per entity, rewinding
//! a target to the time the shooter saw it (clamped to a maximum rewind), and the ray and
//! sphere hit tests run against the rewound capsule.
//!
//! The server never trusts where a client says a target was; it only trusts *when* the
//! client says it was looking (its interpolation render time, as a tick and a fraction), and
//! only within `max_rewind_ms` of the present.

mod capsule;
mod config;
mod history;

pub use capsule::{Capsule, Ray, closest_point_on_segment, ray_vs_capsule, sphere_vs_capsule};
pub use config::{LagCompensationConfig, LagCompensationConfigError};
pub use history::{HitboxHistory, RecordError, RewindError};

#[cfg(test)]
mod tests;
