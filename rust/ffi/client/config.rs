//! `mmo_client_config`: the plain C struct that configures an `mmo_client`, its default
//! initializer, and its validation into the settings the client handle keeps (the pinned
//! fingerprint parsed from hex, the core's `ClientConfig`).

use std::ffi::{CStr, c_char};

use mmo_core::codec::input_codec::MAX_INPUTS;
use mmo_core::session::client::{ClientConfig, ClientSession};
use mmo_net::tls::Fingerprint;

use crate::boundary::{self, FfiError, Out};
use crate::interpolator::mmo_interpolation_config;
use crate::result::mmo_result;

/// Longest SNI server name accepted, bytes (a DNS name is at most 253).
const MAX_SERVER_NAME_LEN_BYTES: usize = 253;

/// Settings of a client connection. Start from `mmo_client_config_default` and set at least
/// `server_fingerprint_hex`.
///
/// The strings are read (and copied) during `mmo_client_new` only. Movement and snapshot
/// settings are the core's defaults, which must match the server's.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mmo_client_config {
    /// SHA-256 fingerprint of the server certificate's DER encoding, 64 hex digits
    /// (NUL-terminated, either case). Required: the client trusts exactly this
    /// certificate. Default NULL (so `mmo_client_new` fails until it is set).
    pub server_fingerprint_hex: *const c_char,
    /// Server name sent as TLS SNI (NUL-terminated), or NULL to send the host given to
    /// `mmo_client_connect`. The pin, not the name, identifies the server. Default NULL.
    pub server_name: *const c_char,
    /// Give up when nothing was heard from the server for this long, milliseconds
    /// (1..=10,000). Default 10,000, which is also the QUIC idle timeout of the transport:
    /// a longer session timeout would never be reached.
    pub idle_timeout_ms: u32,
    /// Most inputs repeated in each input datagram (1..=16): more survive heavier loss at
    /// a few bytes per input. Default 16.
    pub redundant_inputs: u32,
    /// Interpolation of remote entities (render delay, extrapolation, teleports).
    /// Default: `mmo_interpolation_config_default`.
    pub interpolation: mmo_interpolation_config,
}

/// Longest idle timeout accepted, milliseconds (10 minutes).
const MAX_IDLE_TIMEOUT_MS: u32 = 10_000;

/// A validated configuration, owned by the client handle.
#[derive(Clone, Debug)]
pub(crate) struct ClientSettings {
    /// The pinned certificate fingerprint.
    pub(crate) pin: Fingerprint,
    /// SNI name; `None` means the host given to connect.
    pub(crate) server_name: Option<String>,
    /// The session configuration (validated by a trial `ClientSession::new`).
    pub(crate) session: ClientConfig,
}

/// Parses 64 hex digits (optionally `:`-separated pairs) into a fingerprint; the error
/// names what is wrong. The parser is mmo-net's, so every client reads pins alike.
pub(crate) fn parse_fingerprint(hex: &str) -> Result<Fingerprint, String> {
    Fingerprint::from_hex(hex).map_err(|e| match e {
        mmo_net::NetError::Config(message) => message,
        other => other.to_string(),
    })
}

/// Reads an optional NUL-terminated UTF-8 string.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn opt_str(ptr: *const c_char, name: &str) -> Result<Option<String>, FfiError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated per the caller.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str()
        .map(|s| Some(s.to_owned()))
        .map_err(|_| FfiError::config(format!("`{name}` is not valid UTF-8")))
}

impl mmo_client_config {
    /// Validates every field; the error (`MMO_RESULT_INVALID_CONFIG`) names the field.
    ///
    /// # Safety
    /// The string fields are NULL or NUL-terminated strings valid for the call.
    pub(crate) unsafe fn validate(&self) -> Result<ClientSettings, FfiError> {
        // SAFETY: per this function's contract.
        let hex = unsafe { opt_str(self.server_fingerprint_hex, "server_fingerprint_hex") }?
            .ok_or_else(|| {
                FfiError::config(
                    "`server_fingerprint_hex` is required (64 hex digits of the server \
                     certificate's SHA-256)",
                )
            })?;
        let pin = parse_fingerprint(&hex)
            .map_err(|e| FfiError::config(format!("`server_fingerprint_hex` {e}")))?;
        // SAFETY: per this function's contract.
        let server_name = unsafe { opt_str(self.server_name, "server_name") }?;
        if let Some(name) = &server_name {
            check_server_name(name).map_err(|e| FfiError::config(format!("`server_name` {e}")))?;
        }
        if !(1..=MAX_IDLE_TIMEOUT_MS).contains(&self.idle_timeout_ms) {
            return Err(FfiError::config(format!(
                "`idle_timeout_ms` = {} must be in 1..={MAX_IDLE_TIMEOUT_MS}",
                self.idle_timeout_ms
            )));
        }
        let redundant = usize::try_from(self.redundant_inputs).unwrap_or(usize::MAX);
        if !(1..=MAX_INPUTS).contains(&redundant) {
            return Err(FfiError::config(format!(
                "`redundant_inputs` = {} must be in 1..={MAX_INPUTS}",
                self.redundant_inputs
            )));
        }
        let session = ClientConfig {
            interpolation: self.interpolation.to_core(),
            redundant_inputs: redundant,
            idle_timeout_us: u64::from(self.idle_timeout_ms) * 1_000,
            ..ClientConfig::default()
        };
        // The session validates the rest (interpolation ranges) with messages naming the
        // field; a trial session is cheap and is dropped at once.
        ClientSession::new(0, session.clone(), "")
            .map_err(|e| FfiError::config(format!("`interpolation`: {e}")))?;
        Ok(ClientSettings {
            pin,
            server_name,
            session,
        })
    }
}

/// Checks an SNI name: non-empty, at most 253 bytes, printable ASCII without spaces.
pub(crate) fn check_server_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".to_owned());
    }
    if name.len() > MAX_SERVER_NAME_LEN_BYTES {
        return Err(format!(
            "is {} bytes, at most {MAX_SERVER_NAME_LEN_BYTES}",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "contains {c:?}; only printable ASCII without spaces"
        ));
    }
    Ok(())
}

/// Writes the default client config into `*out`: no fingerprint (set it), SNI from the
/// host, 10 s idle timeout, 16 redundant inputs, default interpolation.
///
/// `MMO_RESULT_NULL_ARGUMENT` when `out` is NULL. Thread-safe.
///
/// # Safety
/// `out` must be NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_config_default(out: *mut mmo_client_config) -> mmo_result {
    boundary::guard(|| {
        let out = Out::new(out, "out")?;
        let d = ClientConfig::default();
        let value = mmo_client_config {
            server_fingerprint_hex: std::ptr::null(),
            server_name: std::ptr::null(),
            idle_timeout_ms: u32::try_from(d.idle_timeout_us / 1_000).unwrap_or(u32::MAX),
            redundant_inputs: u32::try_from(d.redundant_inputs).unwrap_or(u32::MAX),
            interpolation: (&d.interpolation).into(),
        };
        // SAFETY: `out` is valid per the caller.
        unsafe { out.write(value) };
        Ok(())
    })
}
