//! Page tokens (`paging::TokenCodec`): decoding any text never panics and practically never
//! succeeds (a token carries a keyed MAC); a token built from the input's bytes decodes to
//! itself, and with any one character of its text changed to another hex digit it is refused.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rvirtd::paging::{PageToken, TokenCodec};
use std::sync::OnceLock;

/// The longest caller that fits a token the codec reads back (2048 hex digits, 60 bytes of
/// fields and MAC); the daemon's callers are 32-character digests (`Caller::token_key`).
const MAX_CALLER: usize = 1024 - 60;

/// Reads fixed-size fields off the input, zeros once it runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = self.0.len().min(N);
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
}

fuzz_target!(|data: &[u8]| {
    static CODEC: OnceLock<TokenCodec> = OnceLock::new();
    let codec = CODEC.get_or_init(TokenCodec::new);
    let text = String::from_utf8_lossy(data);
    assert!(codec.decode(&text).is_err(), "an unissued token was accepted: {text:?}");

    let mut bytes = Bytes(data);
    let generation = u64::from_le_bytes(bytes.take());
    let after = uuid::Uuid::from_bytes(bytes.take());
    let flags = u32::from_le_bytes(bytes.take());
    let count = u64::from_le_bytes(bytes.take());
    let policy_epoch = u64::from_le_bytes(bytes.take());
    let position = u16::from_le_bytes(bytes.take()) as usize;
    let mut caller = String::from_utf8_lossy(bytes.0).into_owned();
    let mut end = caller.len().min(MAX_CALLER);
    while !caller.is_char_boundary(end) {
        end -= 1;
    }
    caller.truncate(end);
    let token = PageToken { generation, after, flags, caller, count, policy_epoch };
    let encoded = codec.encode(&token);
    assert_eq!(codec.decode(&encoded).ok().as_ref(), Some(&token), "{encoded}");

    let mut altered = encoded.into_bytes();
    let at = position % altered.len();
    altered[at] = if altered[at] == b'0' { b'1' } else { b'0' };
    let altered = String::from_utf8(altered).expect("hex");
    assert!(codec.decode(&altered).is_err(), "a token altered at {at} was accepted");
});
