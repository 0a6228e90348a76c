//! `CONNECT_LIST_ALL_DOMAINS`'s answer: encoded straight from one view, and the last one kept.
//!
//! A view is immutable and its generation names it, so while the generation stands, a listing
//! with the same flags for a caller the policy does not filter is the very same bytes: the kept
//! payload is sent again (shared, not copied) instead of walking and encoding every domain. What
//! is kept is one payload, at most one listing's size (16,384 handles of names up to 255 bytes:
//! under 5 MB), replaced by the next listing of another generation or flags.

use super::failure::Failure;
use super::protocol as p;
use super::xdr::{self, Xdr};
use crate::access::Grants;
use crate::filter::ListFilter;
use crate::registry::View;
use std::sync::{Arc, Mutex};

/// The last unfiltered listing payload, by the generation and flags it answers.
#[derive(Debug, Default)]
pub struct Listings {
    last: Mutex<Option<Kept>>,
}

#[derive(Debug)]
struct Kept {
    generation: u64,
    flags: u32,
    payload: Arc<Vec<u8>>,
}

impl Listings {
    /// The kept `remote_connect_list_all_domains_ret` payload, when it answers this listing: the
    /// same generation and flags, for a caller the policy does not filter.
    pub fn kept(&self, view: &View, filter: &ListFilter, grants: &Grants) -> Option<Arc<Vec<u8>>> {
        if grants.filters() {
            // What this caller sees depends on who it is: not the kept answer of another.
            return None;
        }
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let kept = last
            .as_ref()
            .filter(|kept| (kept.generation, kept.flags) == (view.generation, filter.flags()))?;
        Some(kept.payload.clone())
    }

    /// The payload (handles, then the count) for every domain of `view` that `filter` selects and
    /// `grants` shows, refused whole past `REMOTE_DOMAIN_LIST_MAX` as libvirtd refuses it; kept
    /// when it may answer other callers.
    pub fn encode(&self, view: &View, filter: &ListFilter, grants: &Grants) -> Result<Arc<Vec<u8>>, Failure> {
        let payload = Arc::new(encode(view, filter, grants)?);
        if grants.filters() {
            return Ok(payload);
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        // An older view's answer never replaces a newer one's.
        if last.as_ref().is_none_or(|kept| kept.generation <= view.generation) {
            *last =
                Some(Kept { generation: view.generation, flags: filter.flags(), payload: payload.clone() });
        }
        Ok(payload)
    }
}

/// Encodes the listing straight from the view (no handle values in between): this is the call a
/// large listing makes, and its cost is the answer's size.
fn encode(view: &View, filter: &ListFilter, grants: &Grants) -> Result<Vec<u8>, Failure> {
    let max = p::DOMAIN_LIST_MAX as usize;
    // A handle of a 12-byte name is 36 bytes.
    let mut out = Vec::with_capacity(8 + view.len().min(max) * 40);
    out.extend_from_slice(&[0; 4]);
    let mut count = 0usize;
    for domain in view.iter().filter(|d| filter.matches(d) && grants.sees(d)) {
        count += 1;
        if count <= max {
            xdr::put_str(domain.name(), &mut out);
            out.extend_from_slice(domain.uuid().as_bytes());
            domain.id.put(&mut out);
        }
    }
    if count > max {
        return Err(Failure::too_many("domains", count, p::DOMAIN_LIST_MAX));
    }
    out[..4].copy_from_slice(&(count as u32).to_be_bytes());
    (count as u32).put(&mut out);
    Ok(out)
}
