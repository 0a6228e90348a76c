//! rvirsh without a command: virsh 9.0's interactive mode. Commands are read from standard
//! input one line at a time and each line runs as the one-argument form would run it (`;`
//! separates commands, quoting as virsh's); a line that fails to parse, or a command that
//! fails, is reported with the one-shot form's `error: ` lines and the next line is read.
//! `quit` or `exit` (anywhere on a line) or the end of input ends it. As in virsh, the exit
//! status is 0 however the commands fared.
//!
//! On a terminal it greets with virsh's banner (unless `-q`) and prompts before each line.
//! Lines are bounded: one longer than `MAX_LINE_BYTES` is refused, never buffered whole.
//! Knows nothing of what the commands do.

use super::help::Flow;
use super::{Runner, find_command, parser, report};
use anyhow::Context as _;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, BufReader};

/// The longest line read (without its newline): 1 MiB, far more than any command needs.
const MAX_LINE_BYTES: usize = 1 << 20;

/// virsh's banner, with rvirsh's name.
const BANNER: &str = "Welcome to rvirsh, the virtualization interactive terminal.\n\n\
                      Type:  'help' for help with commands\n       'quit' to quit\n\n";

/// Reads and runs lines from standard input until `quit`, `exit` or its end.
pub(super) async fn run(runner: &mut Runner, quiet: bool) -> anyhow::Result<ExitCode> {
    // Differs from libvirt: virsh 9.0 (built with readline) prints its banner, its prompt and
    // an echo of every line even when standard input is not a terminal; rvirsh prints none of
    // them then (nor the final line break), so a script piped to rvirsh prints what the same
    // commands print given as one `;`-joined argument, which is what a script reads.
    let terminal = std::io::stdin().is_terminal();
    if terminal && !quiet {
        print_now(BANNER);
    }
    let prompt = prompt(is_root());
    // tokio's stdin reads on a blocking thread, so the connection's tasks keep running while
    // rvirsh waits for a line; a read is only ever pending while a line is wanted.
    let mut input = BufReader::new(tokio::io::stdin());
    let mut number: u64 = 0;
    loop {
        if terminal {
            print_now(prompt);
        }
        let Some(line) =
            read_line(&mut input, MAX_LINE_BYTES).await.context("failed to read standard input")?
        else {
            break;
        };
        number += 1;
        let Line::Bytes(bytes) = line else {
            report(&anyhow::anyhow!("input line {number} is longer than {MAX_LINE_BYTES} bytes"));
            continue;
        };
        let Ok(text) = String::from_utf8(bytes) else {
            report(&anyhow::anyhow!("input line {number} is not UTF-8"));
            continue;
        };
        if text.is_empty() {
            continue;
        }
        match parser::parse_string(&text, find_command) {
            Err(message) => report(&anyhow::Error::msg(message)),
            Ok(commands) => {
                if runner.run_commands(&commands).await.1 == Flow::Quit {
                    break;
                }
            }
        }
    }
    if terminal {
        // As virsh: end the line of the last prompt (after `quit` as after the end of input).
        print_now("\n");
    }
    Ok(ExitCode::SUCCESS)
}

/// The prompt: virsh's `virsh # `, with rvirsh's name.
///
/// Differs from libvirt: virsh ends its prompt with `#` whoever runs it (`>` when read-only);
/// rvirsh ends it with `$` when not run as root, as shells do.
fn prompt(root: bool) -> &'static str {
    if root { "rvirsh # " } else { "rvirsh $ " }
}

/// Whether rvirsh runs with effective user id 0. Read from /proc: std has no `geteuid`, and
/// this crate has no unsafe code to call libc's.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let ids = status.lines().find_map(|line| line.strip_prefix("Uid:"))?;
            // Real, effective, saved, filesystem.
            ids.split_whitespace().nth(1).map(|effective| effective == "0")
        })
        .unwrap_or(false)
}

fn print_now(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// One line of input, without its newline.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// The line's bytes.
    Bytes(Vec<u8>),
    /// Longer than the bound: read to its end and dropped as it came, never kept whole.
    TooLong,
}

/// Reads the next line, keeping at most `max` bytes of it; `None` at the end of input. A last
/// line without a newline still counts.
async fn read_line<R: AsyncBufRead + Unpin>(input: &mut R, max: usize) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let (mut too_long, mut started) = (false, false);
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            let last = if too_long { Line::TooLong } else { Line::Bytes(line) };
            return Ok(started.then_some(last));
        }
        started = true;
        let newline = available.iter().position(|byte| *byte == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if !too_long && line.len() + chunk.len() > max {
            too_long = true;
            line = Vec::new();
        } else if !too_long {
            line.extend_from_slice(chunk);
        }
        let used = chunk.len() + usize::from(newline.is_some());
        input.consume(used);
        if newline.is_some() {
            return Ok(Some(if too_long { Line::TooLong } else { Line::Bytes(line) }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `input`, read with bound `max` through a reader that hands out at most
    /// `chunk` bytes at a time (so lines straddle buffer refills).
    async fn lines(input: &[u8], max: usize, chunk: usize) -> Vec<Line> {
        let mut reader = BufReader::with_capacity(chunk, input);
        let mut lines = Vec::new();
        while let Some(line) = read_line(&mut reader, max).await.unwrap() {
            lines.push(line);
        }
        lines
    }

    fn bytes(text: &str) -> Line {
        Line::Bytes(text.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn lines_split_at_newlines_and_the_last_needs_none() {
        for chunk in [1, 2, 3, 64] {
            assert_eq!(
                lines(b"list\n\nhelp quit\nexit", 16, chunk).await,
                [bytes("list"), bytes(""), bytes("help quit"), bytes("exit")]
            );
            assert_eq!(lines(b"a\r\n", 16, chunk).await, [bytes("a\r")]);
            assert!(lines(b"", 16, chunk).await.is_empty());
        }
    }

    #[tokio::test]
    async fn a_line_over_the_bound_is_refused_and_the_next_one_read() {
        for chunk in [1, 3, 4, 5, 64] {
            assert_eq!(
                lines(b"abcd\nabcde\nok", 4, chunk).await,
                [bytes("abcd"), Line::TooLong, bytes("ok")]
            );
            assert_eq!(lines(b"abcdefghij", 4, chunk).await, [Line::TooLong]);
        }
    }

    #[test]
    fn prompt_says_whether_root() {
        assert_eq!(prompt(true), "rvirsh # ");
        assert_eq!(prompt(false), "rvirsh $ ");
    }
}
