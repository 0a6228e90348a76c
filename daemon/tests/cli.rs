//! The rvirtd binary's command line: `--help` explains every flag, `--version` answers, and a bad
//! config file stops it with a message that names the file. (Being an integration test of this
//! package also makes `cargo test` build the binary the workspace's process tests run.)

use std::process::Command;

fn rvirtd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rvirtd")).args(args).output().expect("run rvirtd")
}

#[test]
fn help_explains_every_flag() {
    let output = rvirtd(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--config",
        "--state-dir",
        "--runtime-dir",
        "--socket",
        "--listen",
        "--log-format",
        "--log-filter",
        "--shutdown-timeout-secs",
        "--version",
        "SIGHUP",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}:\n{help}");
    }
}

#[test]
fn version_answers() {
    let output = rvirtd(&["--version"]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        format!("rvirtd {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_config_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rvirtd.toml");
    std::fs::write(&config, "stat_dir = '/typo'\n").unwrap();
    let output =
        rvirtd(&["--config", config.to_str().unwrap(), "--socket", dir.path().join("s").to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(config.to_str().unwrap()) && stderr.contains("stat_dir"), "{stderr}");
}
