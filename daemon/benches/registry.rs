//! Registry designs compared (`cargo bench -p rvirtd --bench registry`), the measurement behind
//! the choice recorded in ARCHITECTURE.md:
//! - `snapshot`: rvirt's `Registry`, an `RwLock<Arc<View>>` of persistent (imbl) maps. A listing
//!   holds the lock only to clone the `Arc`; a commit derives the next view in O(log n).
//! - `locked`: a `RwLock` over plain `HashMap`s, as libvirt's object list. A listing holds the
//!   read lock while it filters and copies; a commit takes the write lock.
//! - `cloned`: copy-on-write by cloning a plain `HashMap` on every commit (readers lock-free).
//!
//! For each: listing N domains, one commit, the lock hold time of a listing, and commit latency
//! while another thread lists in a loop (what a mutation waits for when clients list): its mean
//! under criterion, and its tail (p50, p99, max), printed, at N = 100,000.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rvirtd::domain::{Domain, DomainState};
use rvirtd::filter::ListFilter;
use rvirtd::lifecycle::Change;
use rvirtd::registry::Registry;
use rvirtd::xml::{DomainDef, ParseDefaults};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

fn domains(n: u32) -> Vec<Domain> {
    (0..n)
        .map(|i| {
            let xml = format!(
                "<domain type='test'><name>d{i}</name><uuid>{}</uuid><memory>1024</memory><os><type>hvm</type></os></domain>",
                Uuid::from_u128(u128::from(i) + 1)
            );
            let mut domain = Domain::new(Arc::new(DomainDef::parse(&xml, &ParseDefaults { arch: "i686" }).unwrap()), true);
            if i % 2 == 0 {
                domain.id = i as i32 + 1;
                domain.state = DomainState::Running;
            }
            domain
        })
        .collect()
}

/// The design the alternatives are compared with, behind one small trait.
trait Design: Send + Sync {
    fn list(&self, filter: &ListFilter) -> Vec<Arc<Domain>>;
    /// How long a listing keeps writers out.
    fn hold(&self, filter: &ListFilter) -> Duration;
    fn commit(&self, domain: Domain);
}

impl Design for Registry {
    fn list(&self, filter: &ListFilter) -> Vec<Arc<Domain>> {
        self.view().list(filter)
    }
    fn hold(&self, _filter: &ListFilter) -> Duration {
        let started = Instant::now();
        std::hint::black_box(self.view());
        started.elapsed()
    }
    fn commit(&self, domain: Domain) {
        self.commit(domain.uuid(), &Change::update(domain), u64::MAX).unwrap();
    }
}

/// By UUID, and name -> UUID.
type Maps = (HashMap<Uuid, Arc<Domain>>, HashMap<String, Uuid>);

#[derive(Default)]
struct Locked {
    maps: RwLock<Maps>,
}

impl Design for Locked {
    fn list(&self, filter: &ListFilter) -> Vec<Arc<Domain>> {
        let maps = self.maps.read().unwrap();
        maps.0.values().filter(|d| filter.matches(d)).cloned().collect()
    }
    fn hold(&self, filter: &ListFilter) -> Duration {
        let started = Instant::now();
        std::hint::black_box(self.list(filter));
        started.elapsed()
    }
    fn commit(&self, domain: Domain) {
        let mut maps = self.maps.write().unwrap();
        maps.1.insert(domain.name().to_owned(), domain.uuid());
        maps.0.insert(domain.uuid(), Arc::new(domain));
    }
}

#[derive(Default)]
struct Cloned {
    current: RwLock<Arc<HashMap<Uuid, Arc<Domain>>>>,
}

impl Design for Cloned {
    fn list(&self, filter: &ListFilter) -> Vec<Arc<Domain>> {
        let map = self.current.read().unwrap().clone();
        map.values().filter(|d| filter.matches(d)).cloned().collect()
    }
    fn hold(&self, _filter: &ListFilter) -> Duration {
        let started = Instant::now();
        std::hint::black_box(self.current.read().unwrap().clone());
        started.elapsed()
    }
    fn commit(&self, domain: Domain) {
        let mut current = self.current.write().unwrap();
        let mut next = HashMap::clone(&current);
        next.insert(domain.uuid(), Arc::new(domain));
        *current = Arc::new(next);
    }
}

fn designs(n: u32) -> Vec<(&'static str, Arc<dyn Design>)> {
    let all = domains(n);
    let locked = Locked::default();
    let cloned = Cloned::default();
    for domain in &all {
        locked.commit(domain.clone());
    }
    *cloned.current.write().unwrap() =
        Arc::new(all.iter().map(|d| (d.uuid(), Arc::new(d.clone()))).collect());
    vec![
        (
            "snapshot",
            Arc::new(Registry::new(all, 0, rvirtd::history::Retention::of(&Default::default())).unwrap())
                as Arc<dyn Design>,
        ),
        ("locked", Arc::new(locked)),
        ("cloned", Arc::new(cloned)),
    ]
}

fn bench(c: &mut Criterion) {
    let everything = ListFilter::from_flags(0).unwrap();
    for n in [1_000u32, 10_000, 100_000] {
        let victim = domains(1).pop().unwrap();
        for (name, design) in designs(n) {
            let mut group = c.benchmark_group(format!("registry/{name}"));
            group
                .sample_size(20)
                .measurement_time(Duration::from_secs(2))
                .warm_up_time(Duration::from_millis(500));
            group.bench_with_input(BenchmarkId::new("list", n), &n, |b, _| {
                b.iter(|| design.list(&everything))
            });
            group.bench_with_input(BenchmarkId::new("lock_hold_of_a_listing", n), &n, |b, _| {
                b.iter_custom(|iters| (0..iters).map(|_| design.hold(&everything)).sum())
            });
            group.bench_with_input(BenchmarkId::new("commit", n), &n, |b, _| {
                b.iter(|| design.commit(victim.clone()))
            });
            group.bench_with_input(BenchmarkId::new("commit_while_listing", n), &n, |b, _| {
                let stop = Arc::new(AtomicBool::new(false));
                let lister = {
                    let (design, stop, filter) = (design.clone(), stop.clone(), everything);
                    std::thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            std::hint::black_box(design.list(&filter));
                        }
                    })
                };
                b.iter(|| design.commit(victim.clone()));
                stop.store(true, Ordering::Relaxed);
                lister.join().unwrap();
            });
            group.finish();
        }
    }
}

/// The decisive figure, which criterion's means hide: the tail of commit latency while another
/// thread lists in a loop. Commits arrive 50 µs apart, as independent clients' would, rather than
/// back to back (a writer looping on the lock would mostly slip in between listings). Printed as
/// p50 / p99 / max over 5,000 commits per design at N = 100,000.
fn commit_tail_while_listing(_c: &mut Criterion) {
    let everything = ListFilter::from_flags(0).unwrap();
    let victim = domains(1).pop().unwrap();
    for (name, design) in designs(100_000) {
        let stop = Arc::new(AtomicBool::new(false));
        let lister = {
            let (design, stop) = (design.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::black_box(design.list(&everything));
                }
            })
        };
        let mut samples: Vec<Duration> = (0..5_000)
            .map(|_| {
                let gap = Instant::now();
                while gap.elapsed() < Duration::from_micros(50) {
                    std::hint::spin_loop();
                }
                let started = Instant::now();
                design.commit(victim.clone());
                started.elapsed()
            })
            .collect();
        stop.store(true, Ordering::Relaxed);
        lister.join().unwrap();
        samples.sort();
        let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        println!(
            "registry/{name}/commit_tail_while_listing/100000: p50 {:?}, p99 {:?}, max {:?}",
            at(0.5),
            at(0.99),
            samples[samples.len() - 1]
        );
    }
}

criterion_group!(benches, bench, commit_tail_while_listing);
criterion_main!(benches);
