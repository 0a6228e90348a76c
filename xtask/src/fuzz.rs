//! `cargo xtask fuzz [--seconds N] [--target NAME]...`: runs the libFuzzer targets in fuzz/
//! (the hardened parsers: domain and moment XML, flags, URIs, UUIDs, page tokens, the policy
//! file; and libvirt's protocol, whole connections to a real daemon) one after another for a bounded time each, then prints what each did.
//!
//! Installs cargo-fuzz when it is missing, builds every target once (nightly, AddressSanitizer,
//! debug assertions) in fuzz/target, seeds fuzz/corpus/TARGET from the committed
//! fuzz/seeds/TARGET, and runs the built binaries, so sources edited during a long campaign
//! neither rebuild nor change what is fuzzed. Each target's whole output goes to
//! fuzz/target/logs/TARGET.log; a crash leaves its input in fuzz/artifacts/TARGET/.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub(crate) const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [--target NAME]...

Runs the fuzz targets in fuzz/ (cargo-fuzz, nightly toolchain) one at a time, each for N
seconds, then prints a table: seconds, executions, corpus size and crashes of each. Installs
cargo-fuzz when missing. The corpus grows in fuzz/corpus/TARGET (seeded from fuzz/seeds/TARGET);
crashing inputs land in fuzz/artifacts/TARGET; full output in fuzz/target/logs/TARGET.log.
Fails when any target crashed, naming the input.
  --seconds N    seconds per target [default: 60]
  --target NAME  a target to run, repeatable [default: all]: domain_xml, moment_xml, flags,
                 uri, uuid, page_token, policy, native_session";

/// Every target, in the order they run.
const TARGETS: &[&str] =
    &["domain_xml", "moment_xml", "flags", "uri", "uuid", "page_token", "policy", "native_session"];

/// What one target's run did.
struct Outcome {
    target: &'static str,
    seconds: f64,
    executions: Option<u64>,
    corpus: usize,
    /// Inputs that crashed, timed out, leaked or ran out of memory.
    crashes: Vec<PathBuf>,
    /// The lines that say why it failed: the panic or sanitizer report and the stack.
    report: Vec<String>,
}

/// Runs the task with its command-line arguments.
pub(crate) fn run_task(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut seconds: u64 = 60;
    let mut targets: Vec<&'static str> = Vec::new();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value\n\n{USAGE}"));
        match flag.as_str() {
            "--seconds" => {
                let text = value()?;
                seconds = text.parse().ok().filter(|n| *n > 0).with_context(|| {
                    format!("--seconds takes a whole number of seconds above 0, not {text:?}")
                })?;
            }
            "--target" => {
                let name = value()?;
                let target = TARGETS.iter().find(|known| *known == name).with_context(|| {
                    format!("no fuzz target {name:?}; the targets are {}", TARGETS.join(", "))
                })?;
                if !targets.contains(target) {
                    targets.push(target);
                }
            }
            other => bail!("unknown option {other}\n\n{USAGE}"),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    let fuzz_dir = root.join("fuzz");
    ensure_tools()?;
    println!(
        "fuzz: {} target(s), {seconds} s each (about {} min once built)",
        targets.len(),
        (targets.len() as u64 * seconds).div_ceil(60)
    );
    build(root)?;
    let logs = fuzz_dir.join("target/logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let mut outcomes = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        println!("[{}/{}] {target}: {seconds} s", index + 1, targets.len());
        let outcome = run_target(root, target, seconds, &logs)?;
        for line in &outcome.report {
            println!("    | {line}");
        }
        for crash in &outcome.crashes {
            println!(
                "  CRASH: {}\n    reproduce: cargo +nightly fuzz run --fuzz-dir fuzz --no-cfg-fuzzing {target} {}",
                crash.display(),
                crash.display()
            );
        }
        outcomes.push(outcome);
    }
    print_table(&outcomes);
    let crashed: Vec<String> = outcomes
        .iter()
        .flat_map(|outcome| {
            outcome.crashes.iter().map(move |crash| format!("{} ({})", outcome.target, crash.display()))
        })
        .collect();
    if !crashed.is_empty() {
        bail!("{} target(s) crashed: {}", crashed.len(), crashed.join(", "));
    }
    Ok(())
}

/// A `cargo` that honours `+nightly` (the rustup proxy on PATH, not the toolchain's own cargo
/// that runs xtask), without the environment `cargo run` gave xtask: build scripts watch some of
/// it (ring: CARGO_MANIFEST_DIR), so it would rebuild what a plain `cargo fuzz build` built.
fn rustup_cargo() -> Command {
    let mut command = Command::new("cargo");
    const SET_BY_CARGO_RUN: &[&str] = &[
        "CARGO",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTDOC",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
    ];
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if SET_BY_CARGO_RUN.contains(&&*text) || text.starts_with("CARGO_PKG_") {
            command.env_remove(&name);
        }
    }
    command
}

/// Checks the nightly toolchain is there and installs cargo-fuzz when it is not.
fn ensure_tools() -> anyhow::Result<()> {
    let works = |args: &[&str]| {
        rustup_cargo()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !works(&["+nightly", "--version"]) {
        bail!(
            "fuzzing needs the nightly toolchain (for -Zsanitizer and the coverage instrumentation), \
             and `cargo +nightly` does not run; install it with `rustup toolchain install nightly`"
        );
    }
    if works(&["fuzz", "--version"]) {
        return Ok(());
    }
    println!("cargo-fuzz is not installed; installing it: cargo install cargo-fuzz --locked");
    let status = rustup_cargo()
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() || !works(&["fuzz", "--version"]) {
        bail!(
            "installing cargo-fuzz failed ({status}); install it by hand (`cargo install cargo-fuzz --locked`, \
             which needs crates.io and a C++ compiler), then run this again"
        );
    }
    Ok(())
}

/// The options every build shares: its own target folder, no `cfg(fuzzing)` (vendored h2 has a
/// module for that cfg which fails its own missing_docs lint as a path dependency).
const BUILD_OPTIONS: &[&str] = &["--fuzz-dir", "fuzz", "--target-dir", "fuzz/target", "--no-cfg-fuzzing"];

/// Builds every target once.
fn build(root: &Path) -> anyhow::Result<()> {
    println!("building the fuzz targets (nightly, AddressSanitizer, debug assertions) in fuzz/target");
    let started = Instant::now();
    let status = rustup_cargo()
        .args(["+nightly", "fuzz", "build"])
        .args(BUILD_OPTIONS)
        .current_dir(root)
        .status()
        .context("running cargo +nightly fuzz build")?;
    if !status.success() {
        bail!(
            "building the fuzz targets failed ({status}); the compiler's messages are above. Fix them, \
             or try `cargo +nightly fuzz build {}` in {} to see them alone",
            BUILD_OPTIONS.join(" "),
            root.display()
        );
    }
    println!("built in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The built binary of `target`.
fn binary(root: &Path, target: &str) -> PathBuf {
    root.join("fuzz/target/x86_64-unknown-linux-gnu/release").join(target)
}

/// Seeds the corpus, runs `target` for `seconds`, following its output.
fn run_target(root: &Path, target: &'static str, seconds: u64, logs: &Path) -> anyhow::Result<Outcome> {
    let corpus = root.join("fuzz/corpus").join(target);
    let artifacts = root.join("fuzz/artifacts").join(target);
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let seeds = root.join("fuzz/seeds").join(target);
    for seed in files(&seeds).with_context(|| format!("reading the seeds in {}", seeds.display()))? {
        let copy = corpus.join(seed.file_name().expect("a file"));
        if !copy.exists() {
            std::fs::copy(&seed, &copy).with_context(|| format!("copying {}", seed.display()))?;
        }
    }
    let binary = binary(root, target);
    if !binary.exists() {
        bail!(
            "{} is missing after the build; run `cargo +nightly fuzz build {}`",
            binary.display(),
            BUILD_OPTIONS.join(" ")
        );
    }
    let log_path = logs.join(format!("{target}.log"));
    let mut log =
        std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(format!("-max_total_time={seconds}"))
        .args(["-rss_limit_mb=2048", "-timeout=20", "-print_final_stats=1"])
        .arg(&corpus)
        .env("ASAN_OPTIONS", "detect_odr_violation=0")
        .env("RUST_BACKTRACE", "1")
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let (lines, receiver) = mpsc::channel::<String>();
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
    }
    drop(lines);
    let every = Duration::from_secs((seconds / 10).clamp(5, 30));
    let mut next_report = started + every;
    let (mut status_line, mut output) = (None::<String>, Vec::<String>::new());
    loop {
        match receiver.recv_timeout(next_report.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                use std::io::Write as _;
                let _ = writeln!(log, "{line}");
                if line.starts_with('#') {
                    status_line = Some(line.clone());
                }
                output.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let progress = status_line.as_deref().map(summary).unwrap_or_else(|| "starting".into());
                println!("  {target}: {:>4.0}/{seconds} s  {progress}", started.elapsed().as_secs_f64());
                next_report += every;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().context("waiting for the fuzzer")?;
    let seconds = started.elapsed().as_secs_f64();
    let crashes: Vec<PathBuf> = output
        .iter()
        .filter_map(|line| {
            line.split_once("Test unit written to ").map(|(_, path)| PathBuf::from(path.trim()))
        })
        .filter(|path| {
            let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
            !name.starts_with("slow-unit-")
        })
        .collect();
    let mut report = Vec::new();
    if !status.success() {
        // From the first line that says what went wrong, the report and its stack.
        let start = output
            .iter()
            .position(|line| {
                line.contains("panicked at")
                    || line.contains("==ERROR")
                    || line.contains("deadly signal")
                    || line.contains("ALARM")
                    || line.contains("out-of-memory")
            })
            .unwrap_or(output.len().saturating_sub(40));
        report = output[start..].iter().take(80).cloned().collect();
        if crashes.is_empty() {
            bail!(
                "{target} stopped ({status}) without leaving a crashing input; its output is in {}",
                log_path.display()
            );
        }
    }
    Ok(Outcome {
        target,
        seconds,
        executions: executions(&output),
        corpus: files(&corpus)?.len(),
        crashes,
        report,
    })
}

/// The files directly in `dir`.
fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// A libFuzzer status line (`#123456\tpulse  cov: 812 ft: 2140 corp: 310/41Kb ... exec/s: 9000
/// rss: 120Mb`) shortened to runs, coverage, corpus and speed.
fn summary(line: &str) -> String {
    let field = |name: &str| {
        let mut words = line.split_whitespace();
        words.position(|word| word == name).and_then(|_| words.next()).unwrap_or("?").to_owned()
    };
    let runs = line.split_whitespace().next().unwrap_or("#?").trim_start_matches('#');
    let corpus = field("corp:");
    let corpus = corpus.split('/').next().unwrap_or("?");
    format!("{runs} runs  cov {}  corpus {corpus}  {} exec/s", field("cov:"), field("exec/s:"))
}

/// The executions libFuzzer reports at the end: "Done N runs in S second(s)", else the
/// "#N\tDONE" line, else the final stats, else the last status line.
fn executions(output: &[String]) -> Option<u64> {
    let number = |text: &str| text.trim().parse::<u64>().ok();
    let done = output.iter().rev().find_map(|line| {
        line.strip_prefix("Done ").and_then(|rest| rest.split_once(" runs")).and_then(|(n, _)| number(n))
    });
    let hash_done = || {
        output.iter().rev().find_map(|line| {
            let (runs, rest) = line.strip_prefix('#')?.split_once(char::is_whitespace)?;
            rest.trim_start().starts_with("DONE").then(|| number(runs)).flatten()
        })
    };
    let stats = || {
        output
            .iter()
            .rev()
            .find_map(|line| line.strip_prefix("stat::number_of_executed_units:").and_then(number))
    };
    let last =
        || output.iter().rev().find_map(|line| number(line.strip_prefix('#')?.split_whitespace().next()?));
    done.or_else(hash_done).or_else(stats).or_else(last)
}

fn print_table(outcomes: &[Outcome]) {
    println!();
    println!(
        "{:<12} {:>8} {:>13} {:>9} {:>7} {:>8}",
        "target", "seconds", "executions", "exec/s", "corpus", "crashes"
    );
    for outcome in outcomes {
        let (executions, speed) = match outcome.executions {
            Some(runs) => (runs.to_string(), format!("{:.0}", runs as f64 / outcome.seconds.max(0.001))),
            None => ("?".into(), "?".into()),
        };
        println!(
            "{:<12} {:>8.0} {:>13} {:>9} {:>7} {:>8}",
            outcome.target,
            outcome.seconds,
            executions,
            speed,
            outcome.corpus,
            outcome.crashes.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_output() {
        let lines = |text: &str| text.lines().map(String::from).collect::<Vec<_>>();
        let status = "#65536\tpulse  cov: 812 ft: 2140 corp: 310/41Kb lim: 4096 exec/s: 9362 rss: 120Mb";
        assert_eq!(summary(status), "65536 runs  cov 812  corpus 310  9362 exec/s");
        assert_eq!(
            executions(&lines("#1234\tDONE   cov: 9 ft: 9 corp: 3/3b\nDone 1234 runs in 20 second(s)")),
            Some(1234)
        );
        assert_eq!(executions(&lines("#77\tDONE   cov: 9 ft: 9 corp: 3/3b")), Some(77));
        assert_eq!(executions(&lines("stat::number_of_executed_units: 42")), Some(42));
        assert_eq!(executions(&lines(status)), Some(65536));
        assert_eq!(executions(&[]), None);
    }
}
