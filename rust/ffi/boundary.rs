//! Shared helpers of the ABI boundary: the panic guard, the per-thread last error, and the
//! pointer checks every exported function uses, so each handle file stays a thin conversion.
//!
//! Contract of every helper taking a raw pointer: the pointer is either NULL (reported as
//! `MMO_RESULT_NULL_ARGUMENT` naming the argument) or valid as the exported function's docs
//! promise; the helpers cannot check more than NULL.

use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::result::mmo_result;

/// A failure on its way out through the boundary: the code returned and the text stored as
/// the thread's last error.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub(crate) code: mmo_result,
    pub(crate) message: String,
}

impl FfiError {
    pub(crate) fn new(code: mmo_result, message: impl Into<String>) -> Self {
        FfiError {
            code,
            message: message.into(),
        }
    }

    /// `MMO_RESULT_NULL_ARGUMENT` naming the argument.
    pub(crate) fn null(name: &str) -> Self {
        FfiError::new(mmo_result::NullArgument, format!("`{name}` is NULL"))
    }

    /// `MMO_RESULT_INVALID_ENUM` naming the argument and the value.
    pub(crate) fn invalid_enum(name: &str, value: u32) -> Self {
        FfiError::new(
            mmo_result::InvalidEnum,
            format!("`{name}` = {value} names no value of its enum"),
        )
    }

    /// `MMO_RESULT_INVALID_ARGUMENT` naming the argument.
    pub(crate) fn invalid(name: &str, reason: impl std::fmt::Display) -> Self {
        FfiError::new(mmo_result::InvalidArgument, format!("`{name}` {reason}"))
    }

    /// `MMO_RESULT_INVALID_CONFIG` with the validator's text.
    pub(crate) fn config(err: impl std::fmt::Display) -> Self {
        FfiError::new(mmo_result::InvalidConfig, err.to_string())
    }
}

/// What an exported body returns before the guard turns it into an `mmo_result`.
pub(crate) type FfiResult = Result<(), FfiError>;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The calling thread's last error text (empty before any failure).
pub(crate) fn last_error() -> String {
    LAST_ERROR.with(|e| e.borrow().clone())
}

fn set_last_error(message: String) {
    LAST_ERROR.with(|e| *e.borrow_mut() = message);
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic (non-string payload)".to_owned()
    }
}

fn run<F: FnOnce() -> FfiResult>(f: F) -> Result<(), FfiError> {
    match catch_unwind(AssertUnwindSafe(|| {
        #[cfg(test)]
        test_hooks::maybe_panic();
        f()
    })) {
        Ok(result) => result,
        Err(payload) => Err(FfiError::new(mmo_result::Panic, panic_text(&*payload))),
    }
}

/// Runs an exported body inside the panic boundary: `Ok` becomes `MMO_RESULT_OK`, an error
/// its code (its text becomes the thread's last error), a panic `MMO_RESULT_PANIC`.
pub(crate) fn guard<F: FnOnce() -> FfiResult>(f: F) -> mmo_result {
    match run(f) {
        Ok(()) => mmo_result::Ok,
        Err(e) => {
            set_last_error(e.message);
            e.code
        }
    }
}

/// [`guard`] without touching the last error (for `mmo_last_error_message`, whose own
/// failures must not destroy the text the caller is trying to read).
pub(crate) fn guard_keep_last_error<F: FnOnce() -> FfiResult>(f: F) -> mmo_result {
    match run(f) {
        Ok(()) => mmo_result::Ok,
        Err(e) => e.code,
    }
}

/// Runs an infallible exported body that returns a value; a panic returns `fallback` (and
/// sets the last error).
pub(crate) fn guard_value<T, F: FnOnce() -> T>(fallback: T, f: F) -> T {
    let mut value = None;
    match run(|| {
        value = Some(f());
        Ok(())
    }) {
        Ok(()) => value.unwrap_or(fallback),
        Err(e) => {
            set_last_error(e.message);
            fallback
        }
    }
}

/// Borrows `*ptr` immutably.
///
/// # Safety
/// `ptr` is NULL or valid for reads of a `T` for `'a`, with no concurrent writer.
pub(crate) unsafe fn in_ref<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, FfiError> {
    // SAFETY: the caller guarantees validity when non-NULL; `as_ref` handles NULL.
    unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::null(name))
}

/// The whole body of a read-only getter: checks `handle` and `out` for NULL (naming them
/// `handle_name` and `"out"`), then writes `read(handle)` to `*out`, inside the panic guard.
///
/// # Safety
/// `handle` is NULL or valid for reads of an `H`; `out` is NULL or valid for a write of a `T`.
pub(crate) unsafe fn getter<H, T>(
    handle: *const H,
    handle_name: &str,
    out: *mut T,
    read: impl FnOnce(&H) -> T,
) -> mmo_result {
    guard(|| {
        // SAFETY: per this function's contract.
        let h = unsafe { in_ref(handle, handle_name) }?;
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is non-NULL and valid per this function's contract.
        unsafe { out.write(read(h)) };
        Ok(())
    })
}

/// Borrows `*ptr` mutably (handles).
///
/// # Safety
/// `ptr` is NULL or valid for reads and writes of a `T` for `'a`, not aliased elsewhere.
pub(crate) unsafe fn in_mut<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T, FfiError> {
    // SAFETY: the caller guarantees validity and exclusivity when non-NULL.
    unsafe { ptr.as_mut() }.ok_or_else(|| FfiError::null(name))
}

/// Borrows `len` elements at `ptr`; NULL is accepted when `len` is 0.
///
/// # Safety
/// `ptr` is NULL or valid for reads of `len` elements of `T` for `'a`.
pub(crate) unsafe fn in_slice<'a, T>(
    ptr: *const T,
    len: usize,
    name: &str,
) -> Result<&'a [T], FfiError> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(FfiError::null(name));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An output pointer, checked for NULL up front and written only at the end (on success).
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Checks `ptr` for NULL.
    pub(crate) fn new(ptr: *mut T, name: &str) -> Result<Self, FfiError> {
        if ptr.is_null() {
            Err(FfiError::null(name))
        } else {
            Ok(Out(ptr))
        }
    }

    /// Writes the output.
    ///
    /// # Safety
    /// The pointer given to [`Out::new`] is valid for one write of a `T` (no read of the old
    /// value happens, so uninitialised memory is fine).
    pub(crate) unsafe fn write(self, value: T) {
        // SAFETY: non-NULL (checked in `new`) and valid per the caller.
        unsafe { self.0.write(value) }
    }
}

/// An output array: `capacity` elements at `ptr` (NULL accepted when `capacity` is 0).
pub(crate) struct OutSlice<T> {
    ptr: *mut T,
    capacity: usize,
}

impl<T: Copy> OutSlice<T> {
    /// Checks `ptr` for NULL when `capacity > 0`.
    pub(crate) fn new(ptr: *mut T, capacity: usize, name: &str) -> Result<Self, FfiError> {
        if capacity > 0 && ptr.is_null() {
            Err(FfiError::null(name))
        } else {
            Ok(OutSlice { ptr, capacity })
        }
    }

    /// Capacity in elements.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Copies `items` to the front of the array.
    ///
    /// # Safety
    /// The array given to [`OutSlice::new`] is valid for `capacity` writes of `T`.
    pub(crate) unsafe fn write(self, items: &[T]) -> Result<(), FfiError> {
        if items.len() > self.capacity {
            return Err(FfiError::new(
                mmo_result::BufferTooSmall,
                format!("needs {} elements, capacity {}", items.len(), self.capacity),
            ));
        }
        if !items.is_empty() {
            // SAFETY: non-NULL (capacity > 0 here), `items.len() <= capacity`, and a caller
            // buffer cannot overlap our Rust-owned `items`.
            unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), self.ptr, items.len()) };
        }
        Ok(())
    }
}

impl<T> OutSlice<T> {
    /// Writes the items of an exact-size iterator to the front of the array, without
    /// allocating (for per-frame outputs).
    ///
    /// # Safety
    /// The array given to [`OutSlice::new`] is valid for `capacity` writes of `T`.
    pub(crate) unsafe fn write_iter<I>(self, items: I) -> Result<(), FfiError>
    where
        I: ExactSizeIterator<Item = T>,
    {
        if items.len() > self.capacity {
            return Err(FfiError::new(
                mmo_result::BufferTooSmall,
                format!("needs {} elements, capacity {}", items.len(), self.capacity),
            ));
        }
        // `take` guards against an iterator whose `len` under-reports.
        for (i, item) in items.take(self.capacity).enumerate() {
            // SAFETY: `i < capacity`, so `ptr` is non-NULL and valid for this write per the
            // caller.
            unsafe { self.ptr.add(i).write(item) };
        }
        Ok(())
    }
}

/// The shared string output convention: NUL-terminated UTF-8 into `buf` (`len` bytes,
/// NUL included), `*out_len` = length without the NUL, written on success and on
/// `MMO_RESULT_BUFFER_TOO_SMALL` (the buffer is left untouched then).
///
/// # Safety
/// `buf` is NULL or valid for `len` byte writes; `out_len` is NULL or valid for one write.
pub(crate) unsafe fn write_str(
    text: &str,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> FfiResult {
    let out_len = Out::new(out_len, "out_len")?;
    let bytes = OutSlice::new(buf.cast::<u8>(), len, "buf")?;
    let needed = text.len() + 1;
    if bytes.capacity() < needed {
        // SAFETY: `out_len` is valid per the caller.
        unsafe { out_len.write(text.len()) };
        return Err(FfiError::new(
            mmo_result::BufferTooSmall,
            format!("needs {needed} bytes, buffer has {len}"),
        ));
    }
    let mut with_nul = Vec::with_capacity(needed);
    with_nul.extend_from_slice(text.as_bytes());
    with_nul.push(0);
    // SAFETY: `buf` is valid for `len >= needed` bytes per the caller.
    unsafe { bytes.write(&with_nul)? };
    // SAFETY: `out_len` is valid per the caller.
    unsafe { out_len.write(text.len()) };
    Ok(())
}

/// Boxes `value` and returns the owning raw pointer handed to C.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Frees a handle made by [`into_handle`]; NULL is a no-op.
///
/// # Safety
/// `ptr` is NULL or came from [`into_handle`] for the same `T` and was not freed yet.
pub(crate) unsafe fn free_handle<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: per the caller, `ptr` owns a live `Box<T>`.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// Checks a float argument is finite.
pub(crate) fn finite(value: f32, name: &str) -> Result<f32, FfiError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(FfiError::invalid(name, "must be finite"))
    }
}

/// A C `uint8_t` used as a boolean: only 0 and 1 are accepted.
pub(crate) fn flag(value: u8, name: &str) -> Result<bool, FfiError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(FfiError::invalid(
            name,
            format!("is {other}, must be 0 or 1"),
        )),
    }
}

/// Test-only: make the next guarded call on this thread panic inside the boundary, so tests
/// can check that every exported function turns a panic into `MMO_RESULT_PANIC`. Not
/// compiled into the library (no exported panic function exists).
#[cfg(test)]
pub(crate) mod test_hooks {
    use std::cell::Cell;

    thread_local! {
        static PANIC_NEXT: Cell<bool> = const { Cell::new(false) };
    }

    /// Arms the hook for the next guarded call on this thread.
    pub(crate) fn panic_next_call() {
        PANIC_NEXT.with(|p| p.set(true));
    }

    pub(super) fn maybe_panic() {
        if PANIC_NEXT.with(|p| p.replace(false)) {
            panic!("forced by test hook");
        }
    }
}
