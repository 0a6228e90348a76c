//! `cargo xtask soak [--events N] [--restarts R] [--churners C] [--drop-every L] [--json FILE]`:
//! an informer follows a release rvirtd process under churn, its map compared with ListAllDomains
//! at the same generation over and over, across dropped streams and restarts (engine:
//! `rvirt_tests::soak`). Defaults: 100,000 changes, 2 restarts, 4 churners, a dropped stream every
//! 50 listings. Fails on any divergence.

use anyhow::{Context, bail};
use std::path::PathBuf;

/// Runs the task with its command-line arguments.
pub(crate) fn run_task(args: &[String]) -> anyhow::Result<()> {
    if let Some(result) = crate::rerun_in_release("soak", args) {
        return result;
    }
    let mut config =
        rvirt_tests::soak::SoakConfig { events: 100_000, restarts: 2, churners: 4, drop_every: 50 };
    let mut json = None;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => config.events = value()?.parse()?,
            "--restarts" => config.restarts = value()?.parse()?,
            "--churners" => config.churners = value()?.parse()?,
            "--drop-every" => config.drop_every = value()?.parse::<u64>()?.max(1),
            "--json" => json = Some(PathBuf::from(value()?)),
            other => bail!("unknown option {other}; see `cargo xtask soak --help`"),
        }
    }
    crate::build_rvirtd()?;
    println!(
        "soak: {} changes followed by one informer, {} restarts, {} churners, a dropped stream every {} listings",
        config.events, config.restarts, config.churners, config.drop_every
    );
    let root = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(rvirt_tests::soak::run(root.path(), &config, |report| {
        println!(
            "  {:>6.0} s  {:>7} changes followed  {:>6} listings compared  {} divergences  {} gaps  {} resumes  {} restarts",
            report.seconds, report.events, report.compared, report.divergences, report.gaps, report.resumes, report.restarts
        );
    }))?;
    println!(
        "followed {} changes ({} acknowledged by the churners) in {:.0} s; {} listings compared at their generation, \
         {} divergences, {} gaps; {} streams dropped and resumed; {} restarts, {} relists; {} listings passed by a relist",
        report.events,
        report.acknowledged,
        report.seconds,
        report.compared,
        report.divergences,
        report.gaps,
        report.resumes,
        report.restarts,
        report.relists,
        report.passed_by_relist
    );
    for text in &report.divergence_texts {
        println!("DIVERGENCE {text}");
    }
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("json: {}", path.display());
    }
    if report.divergences > 0 || report.gaps > 0 {
        bail!(
            "the informer diverged from the listings {} times, with {} gaps",
            report.divergences,
            report.gaps
        );
    }
    Ok(())
}
