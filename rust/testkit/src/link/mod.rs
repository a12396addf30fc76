//! A seeded link conditioner: latency, jitter, loss, burst loss, duplication, reordering and
//! a bandwidth cap, for driving sans-IO sessions through a realistic bad network
//! reproducibly.
//!
//! ```
//! use mmo_testkit::link::{LinkConditioner, LinkConfig};
//!
//! let mut link = LinkConditioner::new(LinkConfig::broadband(), 42).expect("valid preset");
//! link.send(0, vec![1, 2, 3]);
//! while let Some(at_us) = link.next_delivery_us() {
//!     let packet = link.poll_deliver(at_us).expect("due at at_us");
//!     assert_eq!(packet, vec![1, 2, 3]);
//!     assert!(at_us >= 20_000, "never faster than the base latency");
//! }
//! ```

mod conditioner;
mod config;
mod pair;

pub use conditioner::{LinkConditioner, LinkStats};
pub use config::{BurstLoss, LinkConfig, LinkConfigError};
pub use pair::LinkPair;

#[cfg(test)]
mod tests;
