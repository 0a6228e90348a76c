//! Paged ListAllDomains (Google AIP-158): `PageToken`, an opaque, authenticated cursor into one
//! retained snapshot, and `RetainedViews`, the snapshots kept for listings still being paged.
//!
//! A token names the snapshot's generation, the last UUID returned, the flags, the caller, the
//! listing's total count and the access policy it was filtered by, followed by a keyed BLAKE3 MAC under a key drawn at daemon start, so a
//! client can neither forge nor alter one, and one daemon's tokens mean nothing to the next.

use crate::error::{Error, Result};
use crate::registry::View;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a paged listing's snapshot is kept after its last page was served.
pub const RETENTION: Duration = Duration::from_secs(60);
/// How many snapshots are kept at most (the oldest goes first).
pub const MAX_RETAINED: usize = 16;

/// Where a paged listing stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    /// The generation of the snapshot the listing is cut from.
    pub generation: u64,
    /// The last UUID served; the next page starts after it.
    pub after: Uuid,
    /// The listing's flags: later pages must ask with the same ones.
    pub flags: u32,
    /// Who asked (`Caller::token_key`): a token is not transferable.
    pub caller: String,
    /// Matching domains in the whole listing.
    pub count: u64,
    /// The access policy's epoch at the first page: every page is filtered by the same policy.
    pub policy_epoch: u64,
}

const MAC_BYTES: usize = 16;

/// Encodes and checks tokens with one daemon's key.
#[derive(Debug)]
pub struct TokenCodec {
    key: [u8; 32],
}

impl TokenCodec {
    /// A codec with a fresh random key.
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(16) {
            chunk.copy_from_slice(Uuid::new_v4().as_bytes());
        }
        TokenCodec { key }
    }

    /// The opaque text of a token.
    pub fn encode(&self, token: &PageToken) -> String {
        let mut payload = Vec::with_capacity(64 + token.caller.len());
        payload.extend_from_slice(&token.generation.to_le_bytes());
        payload.extend_from_slice(token.after.as_bytes());
        payload.extend_from_slice(&token.flags.to_le_bytes());
        payload.extend_from_slice(&token.count.to_le_bytes());
        payload.extend_from_slice(&token.policy_epoch.to_le_bytes());
        payload.extend_from_slice(token.caller.as_bytes());
        let mac = blake3::keyed_hash(&self.key, &payload);
        payload.extend_from_slice(&mac.as_bytes()[..MAC_BYTES]);
        payload.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The token behind `text`, if this daemon issued it unaltered.
    pub fn decode(&self, text: &str) -> Result<PageToken> {
        let invalid = || Error::InvalidArg("page_token was not issued by this daemon or was altered".into());
        if !text.len().is_multiple_of(2) || text.len() > 2048 {
            return Err(invalid());
        }
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or_else(invalid)?, 16).map_err(|_| invalid()))
            .collect::<Result<_>>()?;
        if bytes.len() < 44 + MAC_BYTES {
            return Err(invalid());
        }
        let (payload, mac) = bytes.split_at(bytes.len() - MAC_BYTES);
        let expected = blake3::keyed_hash(&self.key, payload);
        // Constant-time comparison: blake3's Hash equality is.
        let mut padded = [0u8; 32];
        padded[..MAC_BYTES].copy_from_slice(mac);
        let mut wanted = *expected.as_bytes();
        wanted[MAC_BYTES..].fill(0);
        if blake3::Hash::from(padded) != blake3::Hash::from(wanted) {
            return Err(invalid());
        }
        let u64_at = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().expect("8 bytes"));
        Ok(PageToken {
            generation: u64_at(0),
            after: Uuid::from_slice(&payload[8..24]).map_err(|_| invalid())?,
            flags: u32::from_le_bytes(payload[24..28].try_into().expect("4 bytes")),
            count: u64_at(28),
            policy_epoch: u64_at(36),
            caller: String::from_utf8(payload[44..].to_vec()).map_err(|_| invalid())?,
        })
    }
}

impl Default for TokenCodec {
    fn default() -> Self {
        Self::new()
    }
}

/// Snapshots kept for listings still being paged. Views share structure with the live registry,
/// so keeping one costs only what has changed since.
#[derive(Debug, Default)]
pub struct RetainedViews {
    /// (view, last use); a std lock held for a scan of at most `MAX_RETAINED` entries.
    views: Mutex<VecDeque<(Arc<View>, Instant)>>,
}

impl RetainedViews {
    /// Keeps `view` for later pages.
    pub fn retain(&self, view: &Arc<View>) {
        let mut views = self.lock();
        let now = Instant::now();
        views.retain(|(kept, used)| {
            now.duration_since(*used) < RETENTION && kept.generation != view.generation
        });
        if views.len() == MAX_RETAINED {
            views.pop_front();
        }
        views.push_back((view.clone(), now));
    }

    /// The retained view of `generation`, if it is still kept.
    pub fn get(&self, generation: u64) -> Option<Arc<View>> {
        let mut views = self.lock();
        let now = Instant::now();
        views.retain(|(_, used)| now.duration_since(*used) < RETENTION);
        let entry = views.iter_mut().find(|(view, _)| view.generation == generation)?;
        entry.1 = now;
        Some(entry.0.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Arc<View>, Instant)>> {
        self.views.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> PageToken {
        PageToken {
            generation: 42,
            after: Uuid::new_v4(),
            flags: 0x11,
            caller: "uid 0".into(),
            count: 7,
            policy_epoch: 3,
        }
    }

    #[test]
    fn tokens_round_trip_and_any_change_is_refused() {
        let codec = TokenCodec::new();
        let text = codec.encode(&token());
        assert_eq!(codec.decode(&text).unwrap().count, 7);
        for i in 0..text.len() {
            let mut altered = text.clone().into_bytes();
            altered[i] = if altered[i] == b'0' { b'1' } else { b'0' };
            assert!(codec.decode(std::str::from_utf8(&altered).unwrap()).is_err(), "byte {i}");
        }
        for bad in ["", "zz", &text[..text.len() - 2]] {
            assert!(codec.decode(bad).is_err());
        }
        assert!(TokenCodec::new().decode(&text).is_err(), "another daemon's key");
    }
}
