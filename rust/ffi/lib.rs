//! The C ABI of MMO Netcore (library name `mmo`, header `include/mmo.h`).
//!
//! This crate only converts between C types and the sans-IO core in `mmo-core`; it holds no
//! logic of its own. Conventions (rustls-ffi is the model):
//!
//! - Prefix `mmo_`; opaque handles `mmo_<noun>` made by `mmo_<noun>_new` and released by
//!   `mmo_<noun>_free` (`_free(NULL)` is a no-op); functions `mmo_<noun>_<verb>`.
//! - Fallible functions return `mmo_result` (banded codes, never reused, see `result.rs`);
//!   outputs come last and are written only on success (the one documented exception:
//!   `MMO_RESULT_BUFFER_TOO_SMALL` writes the required length to the `out_len` of string
//!   outputs). `mmo_result_message` and the per-thread `mmo_last_error_message` give text.
//! - Every exported body runs inside a panic boundary (`MMO_RESULT_PANIC`), every pointer is
//!   NULL-checked, integers naming enum values are validated on entry
//!   (`MMO_RESULT_INVALID_ENUM`), booleans from C are `uint8_t` 0/1.
//! - Threading: a handle is used from one thread at a time (the game thread); free functions
//!   without a handle are thread-safe. Nothing blocks (`mmo_client_free` waits at most
//!   20 ms for the client's runtime to stop); nothing calls back into the caller except
//!   `mmo_poll_log`, on the thread that calls it (the client's tokio threads never do).
//! - Borrowed pointers (inputs, buffers) are only used during the call; nothing is retained.
//!
//! One file per exported handle type: `client.rs` (a whole network session, with its
//! config, event types and gameplay functions in `client/`), `predictor.rs`, `interpolator.rs`,
//! `snapshot_writer.rs`, `snapshot_reader.rs`, `replicator.rs`; free functions in
//! `validation.rs` and `log.rs`; shared value types in `types.rs`; the boundary helpers in
//! `boundary.rs`.

// The exported types carry their C names (`mmo_predictor`), so the header reads as written.
#![allow(non_camel_case_types)]

mod boundary;
pub mod client;
pub mod interpolator;
pub mod log;
pub mod predictor;
pub mod replicator;
pub mod result;
pub mod snapshot_reader;
pub mod snapshot_writer;
pub mod types;
pub mod validation;

#[cfg(test)]
mod tests;

/// Version of the C ABI. Bumped on any incompatible change to an exported signature, type
/// layout or result code meaning. Callers compare `mmo_abi_version()` with the header's
/// `MMO_ABI_VERSION` and refuse a mismatch.
///
/// 2: gameplay (`mmo_client_event` grew the gameplay fields, so its layout changed).
/// 3: chat (`mmo_client_event` grew `chat_from_len_bytes`; the chat event text starts with
/// the sender's name).
/// 4: rejoins (the event kind `MMO_CLIENT_EVENT_KIND_REJOINED`, which a caller must handle:
/// the controlled entity changes).
/// 5: resumption (`mmo_client_resume`, `mmo_client_server_silent_ms` and the event kind
/// `MMO_CLIENT_EVENT_KIND_RESUMED`): a caller built against 5 needs those symbols.
pub const MMO_ABI_VERSION: u32 = 5;

/// Returns the ABI version this library was built with (`MMO_ABI_VERSION`).
///
/// Thread-safe, never fails, takes no pointers.
#[unsafe(no_mangle)]
pub extern "C" fn mmo_abi_version() -> u32 {
    MMO_ABI_VERSION
}
