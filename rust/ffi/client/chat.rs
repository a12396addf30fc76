//! Chat over `mmo_client`: send a line on a channel (a whisper names its recipient), join
//! and leave the zone and global channels. Lines and refusals arrive as the `CHAT` and
//! `CHAT_REFUSED` events of `mmo_client_poll_event` (see [`super::event`]).

use std::ffi::c_char;

use mmo_core::control::{self, ChatChannel};

use super::{arg_str, mmo_client};
use crate::boundary::{self, FfiError};
use crate::result::mmo_result;

/// The channel of an `mmo_chat_channel` value.
fn channel_arg(channel: u32) -> Result<ChatChannel, FfiError> {
    match channel {
        0 => Ok(ChatChannel::Zone),
        1 => Ok(ChatChannel::Global),
        2 => Ok(ChatChannel::Say),
        3 => Ok(ChatChannel::Whisper),
        other => Err(FfiError::invalid_enum("channel", other)),
    }
}

/// Sends a chat line on `channel` (an `mmo_chat_channel` value). `recipient` is the
/// character name of a whisper's recipient and must be NULL on the other channels; the text
/// is at most 512 bytes of UTF-8. A line the server refuses comes back as a `CHAT_REFUSED`
/// event.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT` (client, text), `MMO_RESULT_INVALID_ENUM` (channel),
/// `MMO_RESULT_INVALID_ARGUMENT` (text not UTF-8 or too long; a whisper without a valid
/// recipient, or a recipient on another channel), `MMO_RESULT_INVALID_STATE` (not logged
/// in). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle; `recipient` and `text` NULL or NUL-terminated
/// strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_chat_send(
    client: *mut mmo_client,
    channel: u32,
    recipient: *const c_char,
    text: *const c_char,
) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        // SAFETY: per the caller, NULL or NUL-terminated.
        let text = unsafe { arg_str(text, "text") }?;
        let recipient = if recipient.is_null() {
            None
        } else {
            // SAFETY: per the caller, NUL-terminated.
            Some(unsafe { arg_str(recipient, "recipient") }?)
        };
        let channel = channel_arg(channel)?;
        if text.len() > control::MAX_CHAT_LEN_BYTES {
            return Err(FfiError::invalid(
                "text",
                format!(
                    "is {} bytes, at most {}",
                    text.len(),
                    control::MAX_CHAT_LEN_BYTES
                ),
            ));
        }
        mmo_core::chat::check_recipient(channel, recipient)
            .map_err(|r| FfiError::invalid("recipient", r.message))?;
        let net = c.net("sending chat")?;
        net.session_mut()
            .send_chat(channel, recipient, text)
            .map_err(|e| FfiError::new(mmo_result::InvalidState, format!("chat: {e}")))?;
        c.pump_connected();
        Ok(())
    })
}

/// Receives `channel` (zone or global) again after `mmo_client_chat_leave`. Say and whisper
/// cannot be joined or left: the server answers with a `CHAT_REFUSED` event.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ENUM` (channel),
/// `MMO_RESULT_INVALID_STATE` (not logged in). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_chat_join(client: *mut mmo_client, channel: u32) -> mmo_result {
    // SAFETY: forwarded under the same contract.
    unsafe { membership(client, channel, true) }
}

/// Stops receiving `channel` (zone or global). Say and whisper cannot be left: the server
/// answers with a `CHAT_REFUSED` event.
///
/// Errors: `MMO_RESULT_NULL_ARGUMENT`, `MMO_RESULT_INVALID_ENUM` (channel),
/// `MMO_RESULT_INVALID_STATE` (not logged in). Game thread only.
///
/// # Safety
/// `client` must be NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mmo_client_chat_leave(
    client: *mut mmo_client,
    channel: u32,
) -> mmo_result {
    // SAFETY: forwarded under the same contract.
    unsafe { membership(client, channel, false) }
}

/// Joins (`join`) or leaves `channel`.
///
/// # Safety
/// `client` must be NULL or a live handle.
unsafe fn membership(client: *mut mmo_client, channel: u32, join: bool) -> mmo_result {
    boundary::guard(|| {
        // SAFETY: per the caller, NULL or a live, unaliased handle.
        let c = unsafe { boundary::in_mut(client, "client") }?;
        let channel = channel_arg(channel)?;
        let net = c.net(if join {
            "joining a channel"
        } else {
            "leaving a channel"
        })?;
        let session = net.session_mut();
        let sent = if join {
            session.join_channel(channel)
        } else {
            session.leave_channel(channel)
        };
        sent.map_err(|e| FfiError::new(mmo_result::InvalidState, format!("chat: {e}")))?;
        c.pump_connected();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::ptr::{null, null_mut};

    use super::*;
    use crate::client::config::mmo_client_config_default;
    use crate::client::{mmo_client_free, mmo_client_new};

    #[test]
    fn null_and_bad_arguments_are_errors_not_crashes() {
        let text = CString::new("hi").unwrap();
        let name = CString::new("Bob").unwrap();
        // SAFETY: NULL handles are what is tested; the strings are live.
        unsafe {
            for code in [
                mmo_client_chat_send(null_mut(), 0, null(), text.as_ptr()),
                mmo_client_chat_join(null_mut(), 0),
                mmo_client_chat_leave(null_mut(), 1),
            ] {
                assert_eq!(code, mmo_result::NullArgument);
            }
        }
        let mut config = std::mem::MaybeUninit::uninit();
        // SAFETY: out pointer to a live local, written on success (asserted).
        let mut config = unsafe {
            assert_eq!(
                mmo_client_config_default(config.as_mut_ptr()),
                mmo_result::Ok
            );
            config.assume_init()
        };
        let pin = CString::new("00".repeat(32)).unwrap();
        config.server_fingerprint_hex = pin.as_ptr();
        let mut client = null_mut();
        // SAFETY: a live config and out pointer.
        let made = unsafe { mmo_client_new(&config, &mut client) };
        assert_eq!(made, mmo_result::Ok);
        // SAFETY: `client` is live until freed below; the strings are live.
        unsafe {
            assert_eq!(
                mmo_client_chat_send(client, 0, null(), null()),
                mmo_result::NullArgument
            );
            assert_eq!(
                mmo_client_chat_send(client, 9, null(), text.as_ptr()),
                mmo_result::InvalidEnum
            );
            assert_eq!(mmo_client_chat_join(client, 4), mmo_result::InvalidEnum);
            // A whisper without a recipient, a recipient on global.
            assert_eq!(
                mmo_client_chat_send(client, 3, null(), text.as_ptr()),
                mmo_result::InvalidArgument
            );
            assert_eq!(
                mmo_client_chat_send(client, 1, name.as_ptr(), text.as_ptr()),
                mmo_result::InvalidArgument
            );
            let long = CString::new("x".repeat(control::MAX_CHAT_LEN_BYTES + 1)).unwrap();
            assert_eq!(
                mmo_client_chat_send(client, 1, null(), long.as_ptr()),
                mmo_result::InvalidArgument
            );
            // Valid arguments, but not connected.
            assert_eq!(
                mmo_client_chat_send(client, 3, name.as_ptr(), text.as_ptr()),
                mmo_result::InvalidState
            );
            assert_eq!(mmo_client_chat_leave(client, 1), mmo_result::InvalidState);
            mmo_client_free(client);
        }
    }
}
