//! `Registry`: every domain the daemon knows, indexed by UUID, name and id, behind one lock.
//!
//! The registry holds an immutable `View` (persistent maps from `imbl`, so a copy is O(1) and
//! shares structure) behind a `RwLock<Arc<View>>`. A reader takes the read lock only to clone the
//! `Arc`: that clone *is* the consistent snapshot, and everything after it (filtering, encoding)
//! runs without any lock. A writer takes the write lock, derives the next view from the current
//! one, bumps the generation and swaps the `Arc`. Nothing here awaits, does I/O or knows prost.

use crate::access::Grants;
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::filter::ListFilter;
use crate::history::{History, Retention};
use crate::lifecycle::Change;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// One consistent state of every domain, at one generation.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// How many changes produced this view; strictly increasing.
    pub generation: u64,
    /// Every domain, ordered by UUID.
    domains: imbl::OrdMap<Uuid, Arc<Domain>>,
    /// Name -> UUID, for every domain. The key is the definition's own `Arc<str>`: shared, not
    /// copied.
    by_name: imbl::HashMap<Arc<str>, Uuid>,
    /// Id -> UUID, for active domains only.
    by_id: imbl::OrdMap<i32, Uuid>,
}

/// A committed change: the generation it produced and the domain after it (`None`: removed).
#[derive(Debug, Clone)]
pub struct Committed {
    /// The generation the change produced.
    pub generation: u64,
    /// The domain as the change left it.
    pub domain: Option<Arc<Domain>>,
}

/// The lock-protected registry. See the module comment for why readers never wait on work.
#[derive(Debug)]
pub struct Registry {
    /// The current view. Held for an `Arc` clone (readers) or one derivation (writers); a std
    /// lock on purpose: no code path awaits while holding it.
    current: RwLock<Arc<View>>,
    /// Every recent change, appended by `commit` under the write lock.
    history: History,
}

impl View {
    /// The domain with this UUID.
    pub fn get(&self, uuid: &Uuid) -> Option<&Arc<Domain>> {
        self.domains.get(uuid)
    }

    /// The domain with this exact name.
    pub fn by_name(&self, name: &str) -> Option<&Arc<Domain>> {
        self.by_name.get(name).and_then(|uuid| self.domains.get(uuid))
    }

    /// The active domain with this id.
    pub fn by_id(&self, id: i32) -> Option<&Arc<Domain>> {
        self.by_id.get(&id).and_then(|uuid| self.domains.get(uuid))
    }

    /// How many domains there are.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// Every domain, ordered by UUID.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Domain>> {
        self.domains.values()
    }

    /// Every domain after `after` (all when `None`), ordered by UUID: where a page resumes.
    pub fn iter_after(&self, after: Option<Uuid>) -> impl Iterator<Item = &Arc<Domain>> {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.domains.range((start, Bound::Unbounded)).map(|(_, domain)| domain)
    }

    /// Every domain `filter` matches, ordered by UUID.
    pub fn list(&self, filter: &ListFilter) -> Vec<Arc<Domain>> {
        self.iter().filter(|d| filter.matches(d)).cloned().collect()
    }

    /// How many domains `filter` matches and the caller sees (`grants`).
    pub fn count(&self, filter: &ListFilter, grants: &Grants) -> usize {
        if !grants.filters() {
            return self.iter().filter(|d| filter.matches(d)).count();
        }
        self.iter().filter(|d| filter.matches(d) && grants.sees(d)).count()
    }

    /// The number of active domains the caller sees.
    pub fn num_active(&self, grants: &Grants) -> usize {
        if !grants.filters() {
            return self.by_id.len();
        }
        self.iter().filter(|d| d.is_active() && grants.sees(d)).count()
    }

    /// The number of inactive domains the caller sees.
    pub fn num_inactive(&self, grants: &Grants) -> usize {
        if !grants.filters() {
            return self.len() - self.by_id.len();
        }
        self.iter().filter(|d| !d.is_active() && grants.sees(d)).count()
    }

    /// Ids of the active domains the caller sees, ascending, at most `max`.
    pub fn active_ids(&self, max: usize, grants: &Grants) -> Vec<i32> {
        let seen = |(_, uuid): &(&i32, &Uuid)| self.domains.get(*uuid).is_some_and(|d| grants.sees(d));
        self.by_id.iter().filter(seen).take(max).map(|(id, _)| *id).collect()
    }

    /// Names of the inactive domains the caller sees, in UUID order, at most `max`.
    pub fn inactive_names(&self, max: usize, grants: &Grants) -> Vec<String> {
        let names = self.iter().filter(|d| !d.is_active() && grants.sees(d));
        names.take(max).map(|d| d.name().to_owned()).collect()
    }

    /// Applies one change, checking the index invariants: a name belongs to one UUID, an id to
    /// one active domain.
    /// Returns the domain before and after.
    #[allow(clippy::type_complexity)]
    fn apply(&mut self, uuid: Uuid, change: &Change) -> Result<(Option<Arc<Domain>>, Option<Arc<Domain>>)> {
        let old = self.domains.get(&uuid).cloned();
        let Some(domain) = &change.domain else {
            if let Some(old) = &old {
                self.unindex(old);
                self.domains.remove(&uuid);
            }
            return Ok((old, None));
        };
        debug_assert_eq!(domain.uuid(), uuid);
        if let Some(holder) = self.by_name.get(domain.name())
            && *holder != uuid
        {
            return Err(Error::NameTaken { name: domain.name().to_owned(), uuid: *holder });
        }
        if domain.is_active()
            && let Some(holder) = self.by_id.get(&domain.id)
            && *holder != uuid
        {
            return Err(Error::driver(format!("domain id {} is already in use", domain.id)));
        }
        if let Some(old) = &old {
            self.unindex(old);
        }
        let domain = Arc::new(domain.clone());
        self.by_name.insert(domain.def.name.clone(), uuid);
        if domain.is_active() {
            self.by_id.insert(domain.id, uuid);
        }
        self.domains.insert(uuid, domain.clone());
        Ok((old, Some(domain)))
    }

    fn unindex(&mut self, domain: &Domain) {
        self.by_name.remove(domain.name());
        if domain.is_active() {
            self.by_id.remove(&domain.id);
        }
    }
}

impl Registry {
    /// A registry holding `domains`, at `generation`, with an empty history of a new incarnation.
    pub fn new(
        domains: impl IntoIterator<Item = Domain>,
        generation: u64,
        retention: Retention,
    ) -> Result<Self> {
        let mut view = View { generation, ..View::default() };
        for domain in domains {
            let uuid = domain.uuid();
            if view.domains.contains_key(&uuid) {
                return Err(Error::UuidTaken { name: domain.name().to_owned(), uuid });
            }
            view.apply(uuid, &Change::update(domain))?;
        }
        Ok(Registry { current: RwLock::new(Arc::new(view)), history: History::new(generation, retention) })
    }

    /// The recent changes.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The current view: one consistent snapshot of every domain. O(1); the lock is held only
    /// for the `Arc` clone.
    pub fn view(&self) -> Arc<View> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Commits one change to the domain `uuid` as one new generation, unless that generation
    /// would pass `ceiling` (the highest one reserved on disk): then `Ok(None)`, and the caller
    /// reserves more and tries again.
    pub fn commit(&self, uuid: Uuid, change: &Change, ceiling: u64) -> Result<Option<Committed>> {
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.generation >= ceiling {
            return Ok(None);
        }
        let mut next = View::clone(&current);
        let (before, domain) = next.apply(uuid, change)?;
        next.generation += 1;
        let generation = next.generation;
        *current = Arc::new(next);
        self.history.push(generation, before, domain.clone(), change);
        Ok(Some(Committed { generation, domain }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everyone() -> Grants {
        crate::access::Authority::new(None).grants(&crate::caller::Caller::daemon())
    }
    use crate::domain::DomainState;
    use crate::xml::{DomainDef, ParseDefaults};

    fn domain(name: &str) -> Domain {
        let xml = format!(
            "<domain type='test'><name>{name}</name><memory>1</memory><os><type>hvm</type></os></domain>"
        );
        Domain::new(Arc::new(DomainDef::parse(&xml, &ParseDefaults { arch: "i686" }).unwrap()), true)
    }

    fn started(mut domain: Domain, id: i32) -> Change {
        domain.state = DomainState::Running;
        domain.id = id;
        Change { domain: Some(domain), started: true, pending: false, stopped_as: None }
    }

    fn registry(domains: impl IntoIterator<Item = Domain>, generation: u64) -> Registry {
        let retention = Retention { max_changes: 100, max_age: std::time::Duration::from_secs(60) };
        Registry::new(domains, generation, retention).unwrap()
    }

    fn commit(registry: &Registry, uuid: Uuid, change: Change) -> Result<Committed> {
        registry.commit(uuid, &change, u64::MAX).map(Option::unwrap)
    }

    #[test]
    fn indexes_follow_every_change_and_old_views_stay_as_they_were() {
        let registry = registry([], 0);
        let a = domain("a");
        let uuid = a.uuid();
        let defined = commit(&registry, uuid, Change::update(a.clone())).unwrap();
        assert_eq!(defined.generation, 1);
        let before_start = registry.view();
        let run = commit(&registry, uuid, started(a.clone(), 1)).unwrap();
        assert_eq!(run.domain.unwrap().id, 1);
        let view = registry.view();
        assert_eq!(view.by_id(1).unwrap().name(), "a");
        assert_eq!(view.by_name("a").unwrap().id, 1);
        assert_eq!((view.num_active(&everyone()), view.generation), (1, 2));
        // The snapshot taken earlier is untouched.
        assert_eq!(before_start.by_name("a").unwrap().id, -1);
        assert!(before_start.by_id(1).is_none());
        // An id is held by one active domain at a time.
        let b = domain("b");
        assert!(commit(&registry, b.uuid(), started(b.clone(), 1)).is_err());
        commit(&registry, uuid, Change::remove()).unwrap();
        assert_eq!(commit(&registry, b.uuid(), started(b, 1)).unwrap().domain.unwrap().id, 1);
        assert!(registry.view().by_name("a").is_none());
        // No generation passes the reserved ceiling.
        let generation = registry.view().generation;
        assert!(registry.commit(uuid, &Change::remove(), generation).unwrap().is_none());
    }

    #[test]
    fn a_name_never_maps_to_two_uuids() {
        let registry = registry([domain("a")], 5);
        let imposter = domain("a");
        let err = commit(&registry, imposter.uuid(), Change::update(imposter)).unwrap_err();
        assert!(matches!(err, Error::NameTaken { .. }));
        assert_eq!((registry.view().generation, registry.view().len()), (5, 1));
    }
}
