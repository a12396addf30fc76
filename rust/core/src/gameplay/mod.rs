//! Gameplay rules, sans-IO and authoritative on the server: the content definitions every
//! rule reads, the rules themselves (resources, abilities, inventory, anti-cheat strikes),
//! one character's gameplay state, and the messages that carry requests, results and events
//! over the control stream. Nothing here touches the network; the zone's gameplay phase
//! (`zone/gameplay.rs`) calls into it once per tick.

pub mod abilities;
pub mod character;
pub mod content;
pub mod inventory;
pub mod messages;
pub mod resources;
pub mod strikes;
