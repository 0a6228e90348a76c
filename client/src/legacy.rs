//! The legacy enumeration, kept as racy as the calls it is made of: NumOfDomains, ListDomains,
//! a LookupByID (and GetState) per id, then NumOfDefinedDomains, ListDefinedDomains, a
//! LookupByName (and GetState) per name. Nothing ties the calls together, so a domain that
//! changes between two of them is skipped, listed twice, fails its lookup, or is cut off by a
//! stale count. It exists to be compared with `Connection::list_all_domains`.

use crate::connection::Connection;
use crate::error::{ErrorKind, Result};
use crate::types::{DomainId, DomainState};
use std::future::Future;

/// The call the enumeration is about to make; see `legacy_list_all_with`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyStep {
    /// virConnectNumOfDomains.
    NumOfDomains,
    /// virConnectListDomains.
    ListDomains,
    /// virDomainLookupByID (then GetState) for this id.
    LookupById(i32),
    /// virConnectNumOfDefinedDomains.
    NumOfDefinedDomains,
    /// virConnectListDefinedDomains.
    ListDefinedDomains,
    /// virDomainLookupByName (then GetState) for this name.
    LookupByName(String),
}

/// One domain the enumeration found, with the state it read for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyEntry {
    /// Name, uuid and id from the lookup.
    pub domain: DomainId,
    /// The state from GetState.
    pub state: DomainState,
    /// Its reason number.
    pub reason: i32,
}

/// Everything the enumeration saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyListing {
    /// NumOfDomains' answer.
    pub num_active: u32,
    /// ListDomains' answer (at most `num_active` ids).
    pub ids: Vec<i32>,
    /// NumOfDefinedDomains' answer.
    pub num_inactive: u32,
    /// ListDefinedDomains' answer (at most `num_inactive` names).
    pub names: Vec<String>,
    /// The domains found, active ones first.
    pub domains: Vec<LegacyEntry>,
    /// Ids and names whose lookup (or GetState) said the domain no longer exists.
    pub vanished: Vec<LegacyStep>,
}

/// The legacy enumeration.
pub async fn legacy_list_all(conn: &Connection) -> Result<LegacyListing> {
    legacy_list_all_with(conn, |_| async {}).await
}

/// The legacy enumeration, calling `before` ahead of every call it makes, so a test can place a
/// change at an exact point between two calls.
pub async fn legacy_list_all_with<F, Fut>(conn: &Connection, mut before: F) -> Result<LegacyListing>
where
    F: FnMut(LegacyStep) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut listing = LegacyListing::default();
    before(LegacyStep::NumOfDomains).await;
    listing.num_active = conn.num_of_domains().await?;
    before(LegacyStep::ListDomains).await;
    listing.ids = conn.list_domains(clamp(listing.num_active)).await?;
    for id in listing.ids.clone() {
        let step = LegacyStep::LookupById(id);
        before(step.clone()).await;
        let found = match conn.lookup_by_id(id).await {
            Ok(domain) => domain.get_state().await.map(|(state, reason)| (domain, state, reason)),
            Err(error) => Err(error),
        };
        record(&mut listing, step, found)?;
    }
    before(LegacyStep::NumOfDefinedDomains).await;
    listing.num_inactive = conn.num_of_defined_domains().await?;
    before(LegacyStep::ListDefinedDomains).await;
    listing.names = conn.list_defined_domains(clamp(listing.num_inactive)).await?;
    for name in listing.names.clone() {
        let step = LegacyStep::LookupByName(name.clone());
        before(step.clone()).await;
        let found = match conn.lookup_by_name(&name).await {
            Ok(domain) => domain.get_state().await.map(|(state, reason)| (domain, state, reason)),
            Err(error) => Err(error),
        };
        record(&mut listing, step, found)?;
    }
    Ok(listing)
}

fn clamp(count: u32) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

fn record(
    listing: &mut LegacyListing,
    step: LegacyStep,
    found: Result<(crate::connection::Domain, DomainState, i32)>,
) -> Result<()> {
    match found {
        Ok((domain, state, reason)) => listing.domains.push(LegacyEntry { domain: domain.id, state, reason }),
        Err(error) if error.kind == ErrorKind::NoDomain => listing.vanished.push(step),
        Err(error) => return Err(error),
    }
    Ok(())
}
