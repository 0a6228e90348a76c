//! `cargo xtask`: project automation. A flat match on the subcommand; each task in its own module.

mod bench;
mod crash;
mod race;
mod service;
mod tidy;

use anyhow::bail;

// The benchmark client decodes large answers; measure it with the allocator rvirtd uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;

const USAGE: &str = "usage: cargo xtask <task> [options]

tasks:
  bench            benchmarks of a release rvirtd, beside libvirtd when installed (--quick)
  crash            kill rvirtd with SIGKILL under churn, restart, check nothing is lost (--kills N)
  install-service  install rvirtd, rvirsh, the systemd unit and the default config (--dry-run)
  race             legacy enumeration vs ListAllDomains under churn, every atomic listing replayed
                   ([--domains N] [--churners C] [--listers L] [--duration S] [--json FILE] [--uri URI])
  tidy             check project conventions (also run by `cargo test`)";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("bench") => bench::run_task(&root(), rest),
        Some("crash") => crash::run_task(rest),
        Some("install-service") => service::run_task(&root(), rest),
        Some("race") => race::run_task(rest),
        Some("tidy") => tidy::run(&root()),
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
