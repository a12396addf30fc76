//! Routing the library's `tracing` output to the engine's log.
//!
//! Design: `mmo_set_log_callback` installs (once per process) a minimal `tracing` subscriber
//! that formats each event into a record and queues it in a bounded buffer
//! ([`MMO_LOG_QUEUE_CAPACITY`] records; beyond that records are counted and dropped, and the next
//! poll reports how many). The records reach the callback only inside `mmo_poll_log`, on
//! the thread that calls it (the game thread), so the engine's logger is never called from
//! a library thread. Spans are not tracked (events only); this needs no dependency beyond
//! `tracing` itself.
//!
//! The subscriber is installed as the process-wide default. If something else in the
//! process already installed one, `mmo_set_log_callback` returns
//! `MMO_RESULT_LOG_UNAVAILABLE`.

use std::collections::VecDeque;
use std::ffi::{CString, c_char, c_void};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::boundary::{self, FfiError, Out};
use crate::result::mmo_result;

/// Records kept between polls; older ones stay, newer ones are dropped and counted.
pub const MMO_LOG_QUEUE_CAPACITY: usize = 1024;

/// Severity of a log record, and the maximum severity to record (`mmo_set_log_level`; a
/// plain `uint32_t`, other values give `MMO_RESULT_INVALID_ENUM`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum mmo_log_level {
    /// Record nothing (only as a maximum level).
    Off = 0,
    /// Errors.
    Error = 1,
    /// Warnings.
    Warn = 2,
    /// Information (the default maximum).
    Info = 3,
    /// Debugging detail (e.g. rejected inputs, undecodable snapshots).
    Debug = 4,
    /// Very verbose tracing.
    Trace = 5,
}

fn level_value(level: &Level) -> u32 {
    match *level {
        Level::ERROR => mmo_log_level::Error as u32,
        Level::WARN => mmo_log_level::Warn as u32,
        Level::INFO => mmo_log_level::Info as u32,
        Level::DEBUG => mmo_log_level::Debug as u32,
        Level::TRACE => mmo_log_level::Trace as u32,
    }
}

/// The log callback: `level` is a `mmo_log_level` value, `target` the Rust module that
/// logged (e.g. `"mmo_core::interpolation::buffer"`), `message` the formatted text with its
/// fields (`key=value`). Both strings are NUL-terminated UTF-8, valid only during the call.
/// Called only from `mmo_poll_log`, on the polling thread. Must not throw or unwind.
pub type mmo_log_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: u32,
        target: *const c_char,
        message: *const c_char,
    ),
>;

struct QueuedRecord {
    level: u32,
    target: CString,
    message: CString,
}

struct LogState {
    callback: mmo_log_callback,
    /// The caller's opaque pointer, stored as an address (never dereferenced here).
    user_data: usize,
    queue: VecDeque<QueuedRecord>,
    dropped: u64,
}

static STATE: Mutex<LogState> = Mutex::new(LogState {
    callback: None,
    user_data: 0,
    queue: VecDeque::new(),
    dropped: 0,
});

/// Maximum level recorded (`mmo_log_level`); events above it are filtered before
/// formatting. Records are only queued while a callback is set.
static MAX_LEVEL: AtomicU32 = AtomicU32::new(mmo_log_level::Info as u32);

/// Whether installing the global subscriber succeeded (decided once per process).
static INSTALLED: OnceLock<bool> = OnceLock::new();

fn state() -> MutexGuard<'static, LogState> {
    // A panic while holding the lock cannot leave the queue inconsistent (plain pushes and
    // pops), so a poisoned lock is still usable.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A NUL-terminated copy of `s`, with interior NULs replaced.
fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default()
}

#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// The queueing subscriber (events only).
struct QueueSubscriber;

impl Subscriber for QueueSubscriber {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The level can change at run time, so ask `enabled` every time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && level_value(metadata.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let meta = event.metadata();
        let mut state = state();
        if state.callback.is_none() {
            return;
        }
        if state.queue.len() >= MMO_LOG_QUEUE_CAPACITY {
            state.dropped += 1;
            return;
        }
        let text = format!("{}{}", visitor.message, visitor.fields);
        state.queue.push_back(QueuedRecord {
            level: level_value(meta.level()),
            target: c_string(meta.target()),
            message: c_string(text.trim_start()),
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn install() -> bool {
    *INSTALLED.get_or_init(|| tracing::subscriber::set_global_default(QueueSubscriber).is_ok())
}

/// Sets (or with `callback` NULL, clears) the log callback and its `user_data`.
///
/// From then on the library's log records up to the maximum level (`mmo_set_log_level`,
/// default `MMO_LOG_LEVEL_INFO`) are queued (at most 1024 between polls; extra ones are
/// counted and reported as a warning by the next poll) and delivered by `mmo_poll_log` on
/// the polling thread. Clearing the callback also discards queued records. `user_data` is
/// passed back verbatim and never dereferenced; it must stay valid while the callback is
/// set. Thread-safe.
///
/// Errors: `MMO_RESULT_LOG_UNAVAILABLE` when another `tracing` subscriber is already the
/// process default (nothing changes).
///
/// # Safety
/// `callback` must be NULL or a function with the `mmo_log_callback` signature that stays
/// callable while set.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_set_log_callback(
    callback: mmo_log_callback,
    user_data: *mut c_void,
) -> mmo_result {
    boundary::guard(|| {
        if callback.is_some() && !install() {
            return Err(FfiError::new(
                mmo_result::LogUnavailable,
                "another tracing subscriber is already the process default",
            ));
        }
        let mut state = state();
        state.callback = callback;
        state.user_data = user_data as usize;
        if callback.is_none() {
            state.queue.clear();
            state.dropped = 0;
        }
        Ok(())
    })
}

/// Sets the most verbose level recorded (`level`: a `mmo_log_level` value; `OFF` records
/// nothing). Records already queued stay. Thread-safe.
///
/// Errors: `MMO_RESULT_INVALID_ENUM` for a value that names no level.
#[unsafe(no_mangle)]
pub extern "C" fn mmo_set_log_level(level: u32) -> mmo_result {
    boundary::guard(|| {
        if level > mmo_log_level::Trace as u32 {
            return Err(FfiError::invalid_enum("level", level));
        }
        MAX_LEVEL.store(level, Ordering::Relaxed);
        Ok(())
    })
}

/// Delivers queued log records, oldest first, to the callback on the calling thread: at
/// most `max_records` of them (0: all queued now). `*out_delivered` receives how many were
/// delivered (0 when no callback is set). If records were dropped because the queue was
/// full, a warning saying how many is delivered first (and counts as one).
///
/// The queue lock is not held during callbacks, so the callback may call any `mmo_`
/// function, including logging ones. Call from one thread (the game thread) per frame.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT` when `out_delivered` is NULL.
///
/// # Safety
/// `out_delivered` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_poll_log(max_records: usize, out_delivered: *mut usize) -> mmo_result {
    boundary::guard(|| {
        let out_delivered = Out::new(out_delivered, "out_delivered")?;
        let limit = if max_records == 0 {
            usize::MAX
        } else {
            max_records
        };
        let (callback, user_data, batch) = {
            let mut state = state();
            let Some(callback) = state.callback else {
                // SAFETY: valid per the caller.
                unsafe { out_delivered.write(0) };
                return Ok(());
            };
            let mut batch = Vec::new();
            if state.dropped > 0 && limit > 0 {
                batch.push(QueuedRecord {
                    level: mmo_log_level::Warn as u32,
                    target: c_string(module_path!()),
                    message: c_string(&format!(
                        "{} log records dropped (queue of {MMO_LOG_QUEUE_CAPACITY} full; poll more often)",
                        state.dropped
                    )),
                });
                state.dropped = 0;
            }
            let take = state.queue.len().min(limit - batch.len());
            batch.extend(state.queue.drain(..take));
            (callback, state.user_data, batch)
        };
        for record in &batch {
            // SAFETY: the caller set `callback` with the documented signature; both strings
            // are NUL-terminated and outlive the call; `user_data` is passed back verbatim.
            unsafe {
                callback(
                    user_data as *mut c_void,
                    record.level,
                    record.target.as_ptr(),
                    record.message.as_ptr(),
                );
            }
        }
        // SAFETY: valid per the caller.
        unsafe { out_delivered.write(batch.len()) };
        Ok(())
    })
}
