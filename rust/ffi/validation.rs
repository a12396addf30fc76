//! Server-side validation checks (`mmo_core::validation`): free, stateless, thread-safe
//! functions. Each returns `MMO_RESULT_OK` when the check *ran* and writes its verdict to
//! `*out_kind`: `MMO_REJECTION_KIND_NONE` when accepted, else the kind of violation (count
//! it and log it; `mmo_rejection_kind_name` gives a stable metric label). Error codes are
//! only for misuse (NULL pointers).

use std::ffi::{CStr, c_char};

use mmo_core::validation::{self as core, Rejection, RejectionKind};

use crate::boundary::{self, FfiResult, Out};
use crate::result::mmo_result;
use crate::types::{mmo_move_input, mmo_vec3};

/// The verdict of a check: `NONE` (accepted) or why it was rejected. Values are stable.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mmo_rejection_kind {
    /// Accepted.
    None = 0,
    /// A quantized axis holds -128.
    AxisOutOfRange = 1,
    /// The move vector is longer than 1 (plus quantization tolerance).
    InputMagnitude = 2,
    /// Unknown button bits are set.
    UnknownButtons = 3,
    /// Inputs arrive faster than real time allows (speed hack by time dilation).
    InputRate = 4,
    /// An input sequence went backwards or jumped too far ahead.
    SequenceNotMonotonic = 5,
    /// Moved faster than allowed.
    Speed = 6,
    /// Position jumped farther than any legal move.
    Teleport = 7,
    /// A position, duration or amount is NaN or infinite.
    NonFinite = 8,
    /// Not enough of a resource for the cost.
    ResourceCost = 9,
    /// The action is still on cooldown.
    Cooldown = 10,
    /// The target is out of range.
    Range = 11,
}

impl From<RejectionKind> for mmo_rejection_kind {
    fn from(k: RejectionKind) -> Self {
        match k {
            RejectionKind::AxisOutOfRange => mmo_rejection_kind::AxisOutOfRange,
            RejectionKind::InputMagnitude => mmo_rejection_kind::InputMagnitude,
            RejectionKind::UnknownButtons => mmo_rejection_kind::UnknownButtons,
            RejectionKind::InputRate => mmo_rejection_kind::InputRate,
            RejectionKind::SequenceNotMonotonic => mmo_rejection_kind::SequenceNotMonotonic,
            RejectionKind::Speed => mmo_rejection_kind::Speed,
            RejectionKind::Teleport => mmo_rejection_kind::Teleport,
            RejectionKind::NonFinite => mmo_rejection_kind::NonFinite,
            RejectionKind::ResourceCost => mmo_rejection_kind::ResourceCost,
            RejectionKind::Cooldown => mmo_rejection_kind::Cooldown,
            RejectionKind::Range => mmo_rejection_kind::Range,
        }
    }
}

/// Writes the verdict of a check (`MMO_REJECTION_KIND_NONE` when it passed) to `out_kind`.
///
/// # Safety
/// `out_kind` (non-NULL, checked by `Out::new`) must be valid for a write.
unsafe fn report(out_kind: Out<mmo_rejection_kind>, check: Result<(), Rejection>) -> FfiResult {
    // SAFETY: per this function's contract.
    unsafe { out_kind.write(verdict(check)) };
    Ok(())
}

fn verdict(r: Result<(), Rejection>) -> mmo_rejection_kind {
    match r {
        Ok(()) => mmo_rejection_kind::None,
        Err(rejection) => rejection.kind.into(),
    }
}

/// Returns the stable `snake_case` label of rejection kind `kind` (e.g. `"speed"`, `"none"`
/// for `MMO_REJECTION_KIND_NONE`) as a static NUL-terminated string that lives as long as
/// the library, or NULL for a value that names no kind. Thread-safe, never fails.
#[unsafe(no_mangle)]
pub extern "C" fn mmo_rejection_kind_name(kind: u32) -> *const c_char {
    boundary::guard_value(std::ptr::null(), || {
        if kind == mmo_rejection_kind::None as u32 {
            return c"none".as_ptr();
        }
        let label = RejectionKind::ALL
            .into_iter()
            .find(|k| mmo_rejection_kind::from(*k) as u32 == kind)
            .map(RejectionKind::as_str);
        match label.and_then(|s| STATIC_NAMES.iter().find(|n| n.to_bytes() == s.as_bytes())) {
            Some(name) => name.as_ptr(),
            None => std::ptr::null(),
        }
    })
}

/// NUL-terminated copies of every `RejectionKind::as_str` label (checked by a test).
const STATIC_NAMES: [&CStr; 11] = [
    c"axis_out_of_range",
    c"input_magnitude",
    c"unknown_buttons",
    c"input_rate",
    c"sequence_not_monotonic",
    c"speed",
    c"teleport",
    c"non_finite",
    c"resource_cost",
    c"cooldown",
    c"range",
];

/// Checks that one input is well-formed: axes in `-127..=127`, vector length at most 1
/// (plus quantization tolerance), only known button bits.
///
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Thread-safe.
///
/// # Safety
/// `input` must be NULL or readable; `out_kind` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_validate_input(
    input: *const mmo_move_input,
    out_kind: *mut mmo_rejection_kind,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or readable.
        let input = unsafe { boundary::in_ref(input, "input") }?;
        let out_kind = Out::new(out_kind, "out_kind")?;
        // SAFETY: `out_kind` is writable per the caller.
        unsafe { report(out_kind, core::validate_input(&(*input).into())) }
    })
}

/// Checks that moving from `*prev_pos_m` to `*new_pos_m` in `elapsed_s` seconds stays
/// within `max_speed_mps * (1 + tolerance_frac)` (3D distance; zero Z for a horizontal
/// check). `elapsed_s <= 0` allows no movement; non-finite values give `NON_FINITE`.
///
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Thread-safe.
///
/// # Safety
/// `prev_pos_m` and `new_pos_m` must be NULL or readable; `out_kind` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_check_speed(
    prev_pos_m: *const mmo_vec3,
    new_pos_m: *const mmo_vec3,
    elapsed_s: f32,
    max_speed_mps: f32,
    tolerance_frac: f32,
    out_kind: *mut mmo_rejection_kind,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or readable.
        let prev = unsafe { boundary::in_ref(prev_pos_m, "prev_pos_m") }?;
        // SAFETY: per the caller, NULL or readable.
        let new = unsafe { boundary::in_ref(new_pos_m, "new_pos_m") }?;
        let out_kind = Out::new(out_kind, "out_kind")?;
        // SAFETY: `out_kind` is writable per the caller.
        unsafe {
            report(
                out_kind,
                core::check_speed(
                    prev.to_vec3(),
                    new.to_vec3(),
                    elapsed_s,
                    max_speed_mps,
                    tolerance_frac,
                ),
            )
        }
    })
}

/// Checks that a position change from `*prev_pos_m` to `*new_pos_m` is at most
/// `max_jump_m` (a NaN limit rejects).
///
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Thread-safe.
///
/// # Safety
/// `prev_pos_m` and `new_pos_m` must be NULL or readable; `out_kind` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_check_teleport(
    prev_pos_m: *const mmo_vec3,
    new_pos_m: *const mmo_vec3,
    max_jump_m: f32,
    out_kind: *mut mmo_rejection_kind,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or readable.
        let prev = unsafe { boundary::in_ref(prev_pos_m, "prev_pos_m") }?;
        // SAFETY: per the caller, NULL or readable.
        let new = unsafe { boundary::in_ref(new_pos_m, "new_pos_m") }?;
        let out_kind = Out::new(out_kind, "out_kind")?;
        // SAFETY: `out_kind` is writable per the caller.
        unsafe {
            report(
                out_kind,
                core::check_teleport(prev.to_vec3(), new.to_vec3(), max_jump_m),
            )
        }
    })
}

/// Checks that `available` covers `cost` (mana, stamina, gold; integers are exact up to
/// 2^53). A NaN on either side rejects with `RESOURCE_COST`.
///
/// `MMO_RESULT_NULL_ARGUMENT` when `out_kind` is NULL. Thread-safe.
///
/// # Safety
/// `out_kind` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_check_resource_cost(
    available: f64,
    cost: f64,
    out_kind: *mut mmo_rejection_kind,
) -> mmo_result {
    boundary::guard(|| {
        let out_kind = Out::new(out_kind, "out_kind")?;
        // SAFETY: `out_kind` is writable per the caller.
        unsafe { report(out_kind, core::check_resource_cost(available, cost)) }
    })
}

/// Checks that an action whose cooldown ends at `ready_at_us` may be used at `now_us`.
///
/// `MMO_RESULT_NULL_ARGUMENT` when `out_kind` is NULL. Thread-safe.
///
/// # Safety
/// `out_kind` must be NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_check_cooldown(
    now_us: u64,
    ready_at_us: u64,
    out_kind: *mut mmo_rejection_kind,
) -> mmo_result {
    boundary::guard(|| {
        let out_kind = Out::new(out_kind, "out_kind")?;
        // SAFETY: `out_kind` is writable per the caller.
        unsafe { report(out_kind, core::check_cooldown(now_us, ready_at_us)) }
    })
}

/// Checks that `*target_m` is within `max_range_m` of `*origin_m`.
///
/// `MMO_RESULT_NULL_ARGUMENT` for NULL pointers. Thread-safe.
///
/// # Safety
/// `origin_m` and `target_m` must be NULL or readable; `out_kind` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_check_range(
    origin_m: *const mmo_vec3,
    target_m: *const mmo_vec3,
    max_range_m: f32,
    out_kind: *mut mmo_rejection_kind,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or readable.
        let origin = unsafe { boundary::in_ref(origin_m, "origin_m") }?;
        // SAFETY: per the caller, NULL or readable.
        let target = unsafe { boundary::in_ref(target_m, "target_m") }?;
        let out_kind = Out::new(out_kind, "out_kind")?;
        // SAFETY: `out_kind` is writable per the caller.
        unsafe {
            report(
                out_kind,
                core::check_range(origin.to_vec3(), target.to_vec3(), max_range_m),
            )
        }
    })
}
