//! `cargo xtask install-service [--prefix DIR] [--dry-run]`: builds rvirtd and rvirsh in release,
//! installs them under `PREFIX/bin` (default /usr/local), the systemd unit under
//! /etc/systemd/system, and the default config under /etc/rvirt (kept if present); then asks
//! systemd to reload. `--dry-run` prints what it would do.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// Runs the task with its command-line arguments.
pub(crate) fn run_task(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let mut prefix = PathBuf::from("/usr/local");
    let mut dry_run = false;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--prefix" => prefix = args.next().context("--prefix needs a folder")?.into(),
            "--dry-run" => dry_run = true,
            other => bail!("unknown option {other}; use --prefix DIR or --dry-run"),
        }
    }
    if !dry_run {
        crate::cargo(&["build", "--release", "--quiet", "--bin", "rvirtd", "--bin", "rvirsh"])?;
    }
    let release = root.join("target/release");
    // (from, to, overwrite, mode): modes set outright, never left to the umask or the source.
    let steps: Vec<(PathBuf, PathBuf, bool, u32)> = vec![
        (release.join("rvirtd"), prefix.join("bin/rvirtd"), true, 0o755),
        (release.join("rvirsh"), prefix.join("bin/rvirsh"), true, 0o755),
        (root.join("dist/rvirtd.service"), PathBuf::from("/etc/systemd/system/rvirtd.service"), true, 0o644),
        (root.join("dist/rvirtd.socket"), PathBuf::from("/etc/systemd/system/rvirtd.socket"), true, 0o644),
        (
            root.join("dist/rvirtd-ro.socket"),
            PathBuf::from("/etc/systemd/system/rvirtd-ro.socket"),
            true,
            0o644,
        ),
        (root.join("dist/rvirtd.toml"), PathBuf::from("/etc/rvirt/rvirtd.toml"), false, 0o644),
        (root.join("README.md"), prefix.join("share/doc/rvirt/README.md"), true, 0o644),
    ];
    for (from, to, overwrite, mode) in steps {
        if !overwrite && to.exists() {
            println!("keep     {} (already there)", to.display());
            continue;
        }
        println!("install  {} -> {} (mode {mode:04o})", from.display(), to.display());
        if !dry_run {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(to.parent().expect("a folder"))?;
            std::fs::copy(&from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("setting the mode of {}", to.display()))?;
        }
    }
    if prefix != Path::new("/usr/local") {
        println!(
            "note     the unit runs /usr/local/bin/rvirtd: edit ExecStart for --prefix {}",
            prefix.display()
        );
    }
    println!("run      systemctl daemon-reload && systemctl enable --now rvirtd");
    if !dry_run && Path::new("/run/systemd/system").exists() {
        let status = std::process::Command::new("systemctl").arg("daemon-reload").status()?;
        if !status.success() {
            bail!("systemctl daemon-reload failed");
        }
    }
    Ok(())
}
