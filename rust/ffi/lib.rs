//! The C ABI of MMO Netcore (library name `mmo`).
//!
//! This crate only converts between C types and the sans-IO core in `mmo-core`; it holds no
//! logic of its own. Conventions (rustls-ffi is the model): prefix `mmo_`, opaque handles,
//! `mmo_result` codes, outputs last, a panic boundary around every exported body.
//!
//! Status: only the ABI version is exported so far; handles for the predictor, interpolator,
//! codec, priority and validation arrive with the C ABI issue.

/// Version of the C ABI. Bumped on any incompatible change to an exported signature, type
/// layout or result code meaning. Callers compare it with `MMO_ABI_VERSION` from the header.
pub const MMO_ABI_VERSION: u32 = 1;

/// Returns the ABI version this library was built with (`MMO_ABI_VERSION`).
///
/// Thread-safe, never fails, takes no pointers.
#[unsafe(no_mangle)]
pub extern "C" fn mmo_abi_version() -> u32 {
    MMO_ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_version_matches_constant() {
        assert_eq!(mmo_abi_version(), MMO_ABI_VERSION);
        // The core's wire protocol version is separate from the ABI version; both must be
        // non-zero so that a zeroed struct never looks like a valid version.
        assert_ne!(mmo_core::PROTOCOL_VERSION, 0);
    }
}
