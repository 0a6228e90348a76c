//! rvirsh's command line without a daemon: global options, parse errors (which, as in virsh,
//! stop everything before the connection is opened), connection failures, `help`, and
//! commands read from standard input (a pipe, and a terminal made by util-linux's `script`).
//! Being an integration test of this package, it also makes `cargo test --workspace` build
//! the `rvirsh` binary that tests/it/rvirsh.rs compares against virsh.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// A URI nobody serves: reaching the connection step fails.
const NOWHERE: &str = "unix:///nonexistent/rvirt-test/sock";

fn rvirsh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rvirsh"))
        .args(args)
        .env_remove("RVIRT_DEFAULT_URI")
        .output()
        .expect("run rvirsh")
}

/// Runs rvirsh with `input` piped to its standard input and `$RVIRT_DEFAULT_URI` set to `uri`
/// (or unset).
fn rvirsh_stdin(args: &[&str], uri: Option<&str>, input: &[u8]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rvirsh"));
    command.args(args).env_remove("RVIRT_DEFAULT_URI");
    if let Some(uri) = uri {
        command.env("RVIRT_DEFAULT_URI", uri);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rvirsh");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    // From another thread, so that neither side stalls on a full pipe; rvirsh may stop
    // reading (`quit`), so a broken pipe is expected.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait for rvirsh");
    writer.join().expect("writer thread");
    output
}

/// What `help quit` and `help exit` print (virsh 9.0's text), without the empty line that
/// follows every command.
const HELP_QUIT: &str = "  NAME\n    quit - quit this interactive terminal\n\n  SYNOPSIS\n    quit\n\n";
const HELP_EXIT: &str = "  NAME\n    exit - quit this interactive terminal\n\n  SYNOPSIS\n    exit\n\n";

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
fn rvirsh_help_needs_no_daemon_and_lists_groups_as_virsh() {
    let output = rvirsh_stdin(&["help"], Some(NOWHERE), b"");
    assert!(output.status.success(), "{output:?}");
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with(
            "Grouped commands:\n\n Domain Management (help keyword 'domain'):\n    \
             autostart                      autostart a domain\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(
            "\n Virsh itself (help keyword 'virsh'):\n    exit                           quit this interactive terminal\n    \
             help                           print help\n    quit                           quit this interactive terminal\n\n\n"
        ),
        "{stdout}"
    );
    assert!(output.stderr.is_empty());
}

#[test]
fn rvirsh_default_uri_unreachable_fails_each_command_that_needs_it() {
    // As virsh with an unreachable default URI: each command tries to connect and fails alone.
    let output = rvirsh_stdin(&["list; help quit; dominfo a"], Some(NOWHERE), b"");
    assert!(!output.status.success());
    assert_eq!(text(&output.stdout), format!("\n{HELP_QUIT}\n\n"));
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert_eq!(lines[0], "error: failed to connect to the hypervisor");
    assert_eq!(lines[2], "error: failed to connect to the hypervisor");
}

#[test]
fn rvirsh_stdin_runs_every_line_reports_errors_and_exits_zero() {
    let input = b"help quit\nlist\nlst\n\n\xff\nhelp exit\nlist\n";
    let output = rvirsh_stdin(&[], Some(NOWHERE), input);
    // As virsh: the exit status of the interactive mode is 0, even when the last command failed.
    assert!(output.status.success(), "{output:?}");
    assert_eq!(text(&output.stdout), format!("{HELP_QUIT}\n\n{HELP_EXIT}\n\n"));
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 6, "{stderr}");
    assert_eq!(lines[0], "error: failed to connect to the hypervisor");
    assert!(lines[1].starts_with("error: failed to connect to unix:///nonexistent/"), "{stderr}");
    assert_eq!(lines[2], "error: unknown command: 'lst'");
    assert_eq!(lines[3], "error: input line 5 is not UTF-8");
    assert_eq!(lines[4..], lines[..2]);

    let quiet = rvirsh_stdin(&["-q"], Some(NOWHERE), input);
    assert_eq!(text(&quiet.stdout), format!("{HELP_QUIT}{HELP_EXIT}"));
    assert_eq!(quiet.stderr, output.stderr);
}

#[test]
fn rvirsh_stdin_quit_and_exit_end_processing() {
    for word in ["quit", "exit"] {
        for input in [
            format!("help quit\n{word}\nhelp exit\n"),
            format!("help quit; {word}; help exit\nhelp\n"),
            format!("help quit\n  {word}  \nlst\n"),
        ] {
            let output = rvirsh_stdin(&[], Some(NOWHERE), input.as_bytes());
            assert!(output.status.success(), "{input:?}");
            assert_eq!(text(&output.stdout), format!("{HELP_QUIT}\n"), "{input:?}");
            assert!(output.stderr.is_empty(), "{input:?}: {}", text(&output.stderr));
        }
        // The one-shot form stops there too, with quit's status.
        let output = rvirsh_stdin(&[&format!("help quit; lst2 ; {word}")], Some(NOWHERE), b"");
        assert!(!output.status.success(), "a parse error anywhere still runs nothing");
        let output = rvirsh_stdin(&[&format!("help nosuch; {word}; help exit")], Some(NOWHERE), b"");
        assert!(output.status.success());
        assert_eq!(text(&output.stdout), "\n", "the failed help's empty line, and nothing after quit");
    }
}

#[test]
fn rvirsh_stdin_line_over_one_mib_is_refused_and_the_next_line_runs() {
    const MIB: usize = 1 << 20;
    let mut input = Vec::new();
    // Exactly 1 MiB: read (a comment, so it does nothing).
    input.push(b'#');
    input.extend(std::iter::repeat_n(b'x', MIB - 1));
    input.push(b'\n');
    // One byte more: refused.
    input.extend(std::iter::repeat_n(b'y', MIB + 1));
    input.extend_from_slice(b"\nhelp quit\n");
    // And a last line, without its newline, also too long.
    input.extend(std::iter::repeat_n(b'z', 3 * MIB));
    let output = rvirsh_stdin(&[], Some(NOWHERE), &input);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(text(&output.stdout), format!("{HELP_QUIT}\n"));
    assert_eq!(
        text(&output.stderr),
        "error: input line 2 is longer than 1048576 bytes\nerror: input line 4 is longer than 1048576 bytes\n"
    );
}

#[test]
fn rvirsh_stdin_script_prints_what_the_joined_argument_prints() {
    let lines = ["help quit", "list --all", "help nosuch", "dominfo 'a b'", "help \"exit\"", "help virsh"];
    let script = lines.join("\n") + "\n";
    let joined = lines.join("; ");
    for quiet in [&[][..], &["-q"][..]] {
        let piped = rvirsh_stdin(quiet, Some(NOWHERE), script.as_bytes());
        let mut args = quiet.to_vec();
        args.push(&joined);
        let one_shot = rvirsh_stdin(&args, Some(NOWHERE), b"");
        assert_eq!(text(&piped.stdout), text(&one_shot.stdout), "{quiet:?}");
        assert_eq!(text(&piped.stderr), text(&one_shot.stderr), "{quiet:?}");
        assert_eq!(piped.status.code(), one_shot.status.code(), "{quiet:?}");
        assert!(text(&piped.stdout).contains(HELP_EXIT));
        assert_eq!(text(&piped.stderr).lines().count(), 5, "{}", text(&piped.stderr));
    }
}

#[test]
fn rvirsh_stdin_with_unreachable_named_uri_reads_nothing() {
    // As virsh: a connection named with -c must open before any command is read.
    let output = rvirsh_stdin(&["-c", NOWHERE], None, b"help quit\n");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(stderr.starts_with("error: failed to connect to the hypervisor\n"), "{stderr}");
}

#[test]
fn rvirsh_empty_stdin_is_an_empty_script() {
    let output = rvirsh_stdin(&[], Some(NOWHERE), b"");
    assert!(output.status.success());
    assert!(output.stdout.is_empty());
    assert!(output.stderr.is_empty());
}

#[test]
fn rvirsh_on_a_terminal_greets_prompts_and_ends_the_last_line() {
    // util-linux's `script` (Debian's essential bsdutils) runs rvirsh on a pseudo-terminal and
    // copies our pipe to it; the terminal echoes the input and writes \r\n for \n.
    let command = format!("exec '{}'", env!("CARGO_BIN_EXE_rvirsh"));
    // (Nothing typed after `quit`: `script` lingers 2 s over input its child left unread; the
    // pipe tests show that `quit` ends the reading.)
    let output = rvirsh_script(&command, b"help quit\nquit\n");
    assert!(output.status.success(), "{output:?}");
    let screen = text(&output.stdout).replace("\r\n", "\n");
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.strip_prefix("Uid:").is_some_and(|ids| ids.split_whitespace().nth(1) == Some("0")));
    let prompt = if root { "rvirsh # " } else { "rvirsh $ " };
    let banner = "Welcome to rvirsh, the virtualization interactive terminal.\n\n\
                  Type:  'help' for help with commands\n       'quit' to quit\n\n";
    // The session after the echoed input: banner, prompt, help, prompt, the final line break.
    let expected = format!("{banner}{prompt}{HELP_QUIT}\n{prompt}\n");
    assert!(screen.ends_with(&expected), "{screen:?}");

    // -q drops the banner, not the prompt; the end of input ends it like quit.
    let output = rvirsh_script(&format!("{command} -q"), b"help quit\n");
    let screen = text(&output.stdout).replace("\r\n", "\n");
    assert!(screen.ends_with(&format!("help quit\n{prompt}{HELP_QUIT}{prompt}\n")), "{screen:?}");
}

/// Runs `command` under `script` on a pseudo-terminal, with `input` typed into it.
fn rvirsh_script(command: &str, input: &[u8]) -> Output {
    let mut child = Command::new("script")
        .args(["--quiet", "--return", "--command", command, "/dev/null"])
        .env("RVIRT_DEFAULT_URI", NOWHERE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script (util-linux)");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input).expect("type into the terminal");
    drop(stdin);
    child.wait_with_output().expect("wait for script")
}
