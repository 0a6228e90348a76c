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

/// Runs rvirtd under a umask of 000 until its socket appears, then stops it; every folder it made
/// is 0700, every file 0600 and the socket 0600: modes never follow the umask.
#[test]
fn modes_are_set_explicitly_whatever_the_umask() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let dir = tempfile::tempdir().unwrap();
    let (state, runtime, socket) =
        (dir.path().join("state"), dir.path().join("run"), dir.path().join("sock"));
    let mut child = Command::new("sh")
        .args(["-c", "umask 000; exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_rvirtd")])
        .args(["--state-dir", state.to_str().unwrap(), "--runtime-dir", runtime.to_str().unwrap()])
        .args(["--socket", socket.to_str().unwrap(), "--log-filter", "warn"])
        .spawn()
        .expect("run rvirtd");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !(socket.exists() && runtime.join("booted").exists()) {
        assert!(std::time::Instant::now() < deadline, "rvirtd did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let socket_mode = std::fs::symlink_metadata(&socket).unwrap();
    assert!(socket_mode.file_type().is_socket());
    assert_eq!(socket_mode.mode() & 0o777, 0o600, "socket");
    let mut checked = 0;
    let mut stack = vec![state.clone(), runtime.clone()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let expected = if meta.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(meta.mode() & 0o777, expected, "{}", path.display());
        checked += 1;
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
        }
    }
    assert!(checked >= 6, "only {checked} paths made");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Plain TCP off loopback, a socket path holding a file, a state folder others can write: each
/// refused at start, saying why, and the file left as it was.
#[test]
fn unsafe_places_are_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let base = |state: &str, socket: &str| {
        vec![
            "--state-dir".to_owned(),
            path(state),
            "--runtime-dir".into(),
            path("run"),
            "--socket".into(),
            path(socket),
        ]
    };
    let refused = |args: Vec<String>, expected: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = rvirtd(&args);
        assert!(!output.status.success(), "{args:?} started");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    };
    let mut listen = base("state", "sock");
    listen.extend(["--listen".into(), "0.0.0.0:0".into()]);
    refused(listen, "loopback only");

    std::fs::write(dir.path().join("precious"), "data").unwrap();
    refused(base("state", "precious"), "not a socket");
    assert_eq!(std::fs::read_to_string(dir.path().join("precious")).unwrap(), "data");

    std::fs::create_dir(dir.path().join("open")).unwrap();
    std::fs::set_permissions(dir.path().join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(base("open", "sock"), "lets group or others write to it");
}
