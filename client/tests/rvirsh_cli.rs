//! rvirsh's command line without a daemon: global options, parse errors (which, as in virsh,
//! stop everything before the connection is opened) and connection failures. Being an
//! integration test of this package, it also makes `cargo test --workspace` build the `rvirsh`
//! binary that tests/it/rvirsh.rs compares against virsh.

use std::process::{Command, Output};

/// A URI nobody serves: reaching the connection step fails.
const NOWHERE: &str = "unix:///nonexistent/rvirt-test/sock";

fn rvirsh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rvirsh"))
        .args(args)
        .env_remove("RVIRT_DEFAULT_URI")
        .output()
        .expect("run rvirsh")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn rvirsh_help_prints_usage_and_succeeds() {
    let output = rvirsh(&["--help"]);
    assert!(output.status.success());
    assert!(text(&output.stdout).starts_with("Usage: rvirsh [-c URI] [-q] COMMAND"));
}

#[test]
fn rvirsh_unknown_global_option_is_an_error() {
    let output = rvirsh(&["-x", "list"]);
    assert!(!output.status.success());
    assert_eq!(text(&output.stderr), "error: unsupported option '-x'. See --help.\n");
    assert!(output.stdout.is_empty());
}

#[test]
fn rvirsh_parse_error_anywhere_runs_nothing_and_never_connects() {
    for (input, message) in [
        ("list --all; lst", "unknown command: 'lst'"),
        ("list; start", "command 'start' requires <domain> option"),
        ("dominfo alpha extra", "unexpected data 'extra'"),
        ("list --all --all", "option --all already seen"),
        ("snapshot-create-as a \"open", "missing \""),
    ] {
        let output = rvirsh(&["-c", NOWHERE, input]);
        assert!(!output.status.success(), "{input}");
        assert_eq!(text(&output.stderr), format!("error: {message}\n"), "{input}");
        assert!(output.stdout.is_empty(), "{input}");
    }
}

#[test]
fn rvirsh_unreachable_daemon_reports_two_error_lines() {
    let output = rvirsh(&["--connect", NOWHERE, "list"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(lines[0], "error: failed to connect to the hypervisor");
    assert!(lines[1].starts_with("error: "), "{stderr}");
}

#[test]
fn rvirsh_no_command_is_an_error() {
    let output = rvirsh(&["-c", NOWHERE]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).starts_with("error: "));
}
