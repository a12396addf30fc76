//! `mmo_result`: the banded result codes every fallible function returns, their messages,
//! and the per-thread last error text.
//!
//! Bands (a code is never reused for another meaning once released):
//! - `0`: success;
//! - `1000..2000`: the caller broke a documented contract (NULL pointer, bad enum value,
//!   small buffer, invalid config or argument);
//! - `2000..3000`: data from the wire could not be used (undecodable datagram, unknown
//!   baseline, a server acknowledging an input never sent);
//! - `3000..4000`: the call does not fit the handle's current state (nothing to sample yet,
//!   unknown or duplicate id, log subscriber unavailable, a client not connected yet);
//! - `4000..5000`: the operating system refused a resource (a thread, a socket);
//! - `9000`: a Rust panic was caught at the boundary (a bug in this library: please report).

use std::ffi::c_char;

use crate::boundary::{self, FfiError};

/// Result of every fallible `mmo_` function. Bands (codes are never reused): 0 success;
/// 1000s the caller broke a documented contract; 2000s data from the wire was unusable;
/// 3000s the call does not fit the handle's state; 4000s the operating system refused a
/// resource; 9000 a panic was caught (library bug).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_result {
    /// Success; outputs were written.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1001,
    /// An integer that must name an enum value (category, log level, viewer kind...) does not.
    InvalidEnum = 1002,
    /// A caller buffer is too small; where documented, the required size was written.
    BufferTooSmall = 1003,
    /// A configuration struct failed validation; the last error names the field.
    InvalidConfig = 1004,
    /// An argument is out of its documented range (non-finite float, bad index...).
    InvalidArgument = 1005,
    /// A datagram could not be decoded (truncated, out-of-range field, wrong kind...).
    DecodeFailed = 2001,
    /// A snapshot references a baseline this side no longer holds; it was not applied.
    UnknownBaseline = 2002,
    /// The server acknowledged an input sequence that was never pushed.
    AckAhead = 2003,
    /// Nothing to return yet (e.g. an interpolator with no sample).
    Empty = 3001,
    /// No entity or client with this id.
    NotFound = 3002,
    /// An entity or client with this id already exists.
    AlreadyExists = 3003,
    /// Another `tracing` subscriber is already installed in this process, so log records
    /// cannot be routed to the callback.
    LogUnavailable = 3004,
    /// The handle is not in a state where this call makes sense (sending input before the
    /// welcome, connecting a client twice...); the last error says which state it is in.
    InvalidState = 3005,
    /// The operating system refused a resource the library needed (a thread, a socket);
    /// the last error has the system's text.
    SystemError = 4001,
    /// A Rust panic was caught at the ABI boundary. The handle involved may be inconsistent:
    /// free it. This is a bug in the library.
    Panic = 9000,
}

impl mmo_result {
    /// Every code, for tests and for the message table. Crate-private: cbindgen exports
    /// `pub` associated constants, and this one would become an unusable
    /// `#define mmo_result_ALL { mmo_result_Ok, ... }` (Rust names) in the header.
    pub(crate) const ALL: [mmo_result; 16] = [
        mmo_result::Ok,
        mmo_result::NullArgument,
        mmo_result::InvalidEnum,
        mmo_result::BufferTooSmall,
        mmo_result::InvalidConfig,
        mmo_result::InvalidArgument,
        mmo_result::DecodeFailed,
        mmo_result::UnknownBaseline,
        mmo_result::AckAhead,
        mmo_result::Empty,
        mmo_result::NotFound,
        mmo_result::AlreadyExists,
        mmo_result::LogUnavailable,
        mmo_result::InvalidState,
        mmo_result::SystemError,
        mmo_result::Panic,
    ];

    /// The code for a raw value, if it names one.
    #[must_use]
    pub fn from_u32(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|r| *r as u32 == code)
    }

    /// A fixed, human-readable description of the code (no details; see the last error).
    #[must_use]
    pub fn message(self) -> &'static str {
        match self {
            mmo_result::Ok => "success",
            mmo_result::NullArgument => "a required pointer argument was NULL",
            mmo_result::InvalidEnum => "an integer argument does not name a value of its enum",
            mmo_result::BufferTooSmall => "the caller's buffer is too small",
            mmo_result::InvalidConfig => "the configuration is invalid",
            mmo_result::InvalidArgument => "an argument is out of its documented range",
            mmo_result::DecodeFailed => "the datagram could not be decoded",
            mmo_result::UnknownBaseline => {
                "the snapshot references a baseline that is no longer held"
            }
            mmo_result::AckAhead => "the server acknowledged an input that was never sent",
            mmo_result::Empty => "nothing is available yet",
            mmo_result::NotFound => "no entity or client with this id",
            mmo_result::AlreadyExists => "an entity or client with this id already exists",
            mmo_result::LogUnavailable => {
                "another tracing subscriber is installed; log records cannot be routed"
            }
            mmo_result::InvalidState => "the call does not fit the handle's current state",
            mmo_result::SystemError => "the operating system refused a resource (thread, socket)",
            mmo_result::Panic => "internal panic caught at the C ABI boundary (library bug)",
        }
    }
}

/// Writes the fixed description of `code` into `buf` as a NUL-terminated UTF-8 string.
///
/// `*out_len` receives the description's length in bytes without the NUL, on success and
/// also on `MMO_RESULT_BUFFER_TOO_SMALL` (then the buffer needs `*out_len + 1` bytes and is
/// left untouched). An unknown `code` gets the text "unknown result code" (not an error, so
/// codes from a newer library still print something). `buf` may be NULL only when `len`
/// is 0 (a size query).
///
/// Returns `MMO_RESULT_NULL_ARGUMENT` when `out_len` is NULL or `buf` is NULL with `len > 0`.
/// Thread-safe; borrows `buf` for the call only.
///
/// # Safety
/// `buf` must be NULL or valid for `len` bytes of writes; `out_len` NULL or valid for one
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_result_message(
    code: u32,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> mmo_result {
    boundary::guard(|| {
        let text = mmo_result::from_u32(code).map_or("unknown result code", mmo_result::message);
        // SAFETY: the caller guarantees `buf`/`len` and `out_len` as documented above.
        unsafe { boundary::write_str(text, buf, len, out_len) }
    })
}

/// Writes the text of the last error set on the calling thread by a failed `mmo_` call
/// (NUL-terminated UTF-8), with details such as the offending config field.
///
/// The text is per thread and stays until the next failure on this thread (successful calls
/// do not clear it); it is empty before any failure. Same buffer rules as
/// [`mmo_result_message`]: `*out_len` is the length without the NUL, also written on
/// `MMO_RESULT_BUFFER_TOO_SMALL`. Reading it never changes it.
///
/// # Safety
/// `buf` must be NULL or valid for `len` bytes of writes; `out_len` NULL or valid for one
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_last_error_message(
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> mmo_result {
    // Read before entering the guard: the guard itself may overwrite the last error on
    // failure, which is fine, but the text we report must be the previous one.
    let text = boundary::last_error();
    boundary::guard_keep_last_error(|| {
        // SAFETY: the caller guarantees `buf`/`len` and `out_len` as documented above.
        unsafe { boundary::write_str(&text, buf, len, out_len) }
    })
}

impl From<mmo_result> for FfiError {
    fn from(code: mmo_result) -> Self {
        FfiError::new(code, code.message())
    }
}
