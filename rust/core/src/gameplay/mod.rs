//! Gameplay rules, sans-IO and authoritative on the server (issue 5, first slice): the
//! content definitions every rule reads, and the rules themselves. Nothing here touches the
//! network; the zone and the sessions call into it.
//!
//! Not done yet (issue 5): the wire messages and results for abilities and inventory, the
//! zone calling these rules, lag-compensated hit validation of abilities, the anti-cheat
//! strike counter, the C ABI functions, and the load tester's real abilities.

pub mod abilities;
pub mod content;
pub mod inventory;
pub mod resources;
