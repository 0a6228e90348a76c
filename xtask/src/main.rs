//! `cargo xtask`: project automation. A flat match on the subcommand; each task in its own module.

mod bench;
mod bench_qemu;
mod bench_watch;
mod certs;
mod crash;
mod fuzz;
mod race;
mod service;
mod soak;
mod stress;
mod test;
mod tidy;

use anyhow::bail;

// The benchmark client decodes large answers; measure it with the allocator rvirtd uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;

const USAGE: &str = "usage: cargo xtask <task> [options]

tasks:
  bench            benchmarks of a release rvirtd, beside libvirtd when installed (--quick, --qemu)
  certs            a throwaway CA, server and client certificates for TLS tests and demos (DIR)
  crash            kill rvirtd with SIGKILL under churn, restart, check nothing is lost (--kills N)
  fuzz             run the parsers' fuzz targets, each for a bounded time (--seconds N, --target NAME)
  install-service  install rvirtd, rvirsh, the systemd unit and the default config (--dry-run)
  race             legacy enumeration vs ListAllDomains under churn, every atomic listing replayed
  soak             an informer against ListAllDomains at the same generations, across reconnects and restarts
  stress           hostile loads on a release rvirtd: memory, threads, latency stay bounded (--quick)
  test             install what the tests need when missing, then run cargo test --workspace
  tidy             check project conventions (also run by `cargo test`)

`cargo xtask TASK --help` shows a task's options.";

/// Each task's options, for `cargo xtask TASK --help`.
fn task_usage(task: &str) -> Option<&'static str> {
    Some(match task {
        "bench" => "usage: cargo xtask bench [--quick] [--sizes N,N,...] [--json FILE] [--no-libvirt]
       cargo xtask bench --watch [--quick] [--json FILE] [--no-libvirt]
       cargo xtask bench --qemu [--quick] [--runs N] [--json FILE] [--no-libvirt]

Benchmarks a release rvirtd (state on tmpfs, client in another process), beside a private
libvirtd on its test driver when libvirtd and python3-libvirt are installed. For each N up to
16,384, libvirt's own clients too, against rvirtd's native socket and against libvirtd:
python3-libvirt's listAllDomains(0) (p50/p99) and a `virsh list --all` process (p50).
  --quick        sizes 100, 1000 and 10000, fewer rounds: proves the benchmark works
  --sizes LIST   domain counts to measure [default: 100,1000,10000,100000]
  --json FILE    also write the report as JSON
  --no-libvirt   skip libvirtd even when it is installed

Every run (and --quick) ends with the watch section; --watch runs only it: WatchDomainEvents
latency with 1, 10 and 100 watchers, throughput, memory per watcher, a stalled watcher, missed,
silent and lost changes, beside libvirtd's domainEventRegisterAny (xtask/src/bench_watch.rs).

With --qemu, the qemu driver on the boot-sector guest (q35, 32 MiB, 1 vcpu, TCG) instead:
define, start (until it returns, until the guest runs), suspend, resume, ACPI shutdown,
destroy, kill -9 of QEMU seen, managed save and restore, snapshot create and revert,
ListAllDomains with 1, 10 and 30 guests running, daemon RSS; beside libvirt's own QEMU driver
(python3-libvirt's qemu:///embed, libvirt-daemon-driver-qemu) on the same guest.
  --quick        3 runs of each operation, 20 listings (about a minute)
  --runs N       runs of each operation [default: 20; 3 with --quick]",
        "certs" => certs::USAGE,
        "crash" => "usage: cargo xtask crash [--kills N] [--clients C] [--domains D] [--max-churn-ms MS] [--json FILE]

Kills rvirtd with SIGKILL at random moments under churn, restarts it, and checks every
acknowledged change survived and nothing in flight came back half.
  --kills N          kills [default: 200]
  --clients C        churning clients [default: 4]
  --domains D        domains per client [default: 6]
  --max-churn-ms MS  longest churn between two kills [default: 400]
  --json FILE        also write the report as JSON",
        "fuzz" => fuzz::USAGE,
        "install-service" => "usage: cargo xtask install-service [--prefix DIR] [--dry-run]

Builds rvirtd and rvirsh in release and installs them under DIR/bin, the systemd unit in
/etc/systemd/system and the default config in /etc/rvirt (kept when present).
  --prefix DIR  [default: /usr/local]
  --dry-run     show the steps, change nothing",
        "race" => "usage: cargo xtask race [--driver test|qemu] [--domains N] [--churners C] [--listers L] [--watchers W] [--duration S] [--json FILE] [--uri URI]

The legacy enumeration against ListAllDomains under churn; every atomic listing is replayed
against the registry at its generation, and so is every state the watchers' informers pass
through (each drops its stream every 100 changes and resumes).
  --driver D     test (in-memory domains) or qemu (real boot-sector guests: starts, destroys,
                 suspends, resumes and managed saves of QEMU processes) [default: test]
  --domains N    population [default: 50; 24 with --driver qemu]
  --churners C   clients changing domains [default: 4]
  --listers L    listing clients, half legacy, half ListAllDomains [default: 16]
  --watchers W   informers following the churn (WatchDomainEvents) [default: 2]
  --duration S   seconds [default: 10]
  --json FILE    also write the report as JSON
  --uri URI      use a running rvirtd instead of starting one",
        "soak" => "usage: cargo xtask soak [--events N] [--restarts R] [--churners C] [--drop-every L] [--json FILE]

An informer (WatchDomainEvents) follows a release rvirtd process under churn; its map is
compared with ListAllDomains at the same generation again and again, across dropped streams
and restarts (each a new incarnation: the informer lists again). Fails on any divergence.
  --events N      changes to follow [default: 100000]
  --restarts R    daemon restarts, evenly spread [default: 2]
  --churners C    churning clients [default: 4]
  --drop-every L  drop the informer's stream every L listings [default: 50]
  --json FILE     also write the report as JSON",
        "stress" => "usage: cargo xtask stress [--quick] [--domains N] [--seconds S] [--json FILE] [--rss-budget-mib M] [--silent C] [--xml-mib M]

Hostile loads against one release rvirtd (state on tmpfs): many concurrent full listings,
silent connections, answers never read, floods of large XML. Samples the daemon's RSS and
threads every 50 ms while a well-behaved client measures its read and mutation latency; fails
when RSS passes the budget, threads reach 64, or the well-behaved p99 reaches 50 ms.
  --quick             2,000 domains, 3 s per load, smaller loads: proves the test works
  --domains N         domains defined first [default: 20000]
  --seconds S         seconds per load [default: 10; silent connections run at least 13]
  --rss-budget-mib M  the daemon's RSS budget [default: 1024]
  --silent C          silent connections, capped by RLIMIT_NOFILE [default: 3000]
  --xml-mib M         size of each hostile DefineXML document [default: 1]
  --json FILE         also write the report as JSON",
        "test" => "usage: cargo xtask test [-- CARGO_TEST_ARGS]

Installs what the tests need when it is missing (Debian's libvirt-clients for virsh,
python3-grpcio and qemu-system-x86; needs root and apt-get, and says so otherwise), then runs
`cargo test --workspace` with CARGO_TEST_ARGS appended.",
        "tidy" => "usage: cargo xtask tidy

Checks project conventions (also run by `cargo test`).",
        _ => return None,
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let task = args.first().map(String::as_str);
    if let Some(task) = task
        && rest.iter().take_while(|arg| *arg != "--").any(|arg| arg == "--help" || arg == "-h")
        && let Some(usage) = task_usage(task)
    {
        println!("{usage}");
        return Ok(());
    }
    match task {
        Some("bench") => bench::run_task(&root(), rest),
        Some("certs") => certs::run_task(rest),
        Some("crash") => crash::run_task(rest),
        Some("fuzz") => fuzz::run_task(&root(), rest),
        Some("install-service") => service::run_task(&root(), rest),
        Some("race") => race::run_task(rest),
        Some("soak") => soak::run_task(rest),
        Some("stress") => stress::run_task(rest),
        Some("test") => test::run_task(rest),
        Some("tidy") => tidy::run(&root()),
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

/// The workspace root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

/// Runs `task` again in a release build of xtask when this one is a debug build (figures from a
/// debug build mean nothing); `None` when this already is the release build.
fn rerun_in_release(task: &str, args: &[String]) -> Option<anyhow::Result<()>> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let mut release = vec!["run", "--release", "--quiet", "--package", "xtask", "--", task];
    release.extend(args.iter().map(String::as_str));
    Some(cargo(&release))
}

/// Builds rvirtd in the profile xtask itself was built in, beside xtask's own binary, where
/// `rvirt_tests::workspace_binary` finds it.
fn build_rvirtd() -> anyhow::Result<()> {
    let profile: &[&str] = if cfg!(debug_assertions) { &[] } else { &["--release"] };
    cargo(&[&["build", "--quiet", "--package", "rvirtd", "--bin", "rvirtd"][..], profile].concat())
}

/// Runs cargo (the one that runs xtask) with `args` in the workspace root.
fn cargo(args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo).args(args).current_dir(root()).status()?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}
