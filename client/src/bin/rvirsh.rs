//! rvirsh, a virsh-compatible command-line tool for rvirtd: `rvirsh [-c URI] [-q] COMMAND
//! [ARGS...]`, `rvirsh -c URI "cmd1 args; cmd2 args"`, or `rvirsh [-c URI]` alone, which reads
//! commands from standard input (an interactive shell on a terminal). The commands live in
//! `src/rvirsh/`.

#[path = "../rvirsh/mod.rs"]
mod rvirsh;

use std::process::ExitCode;

// Differs from the `main -> anyhow::Result` convention: std prints a returned error as
// `Error: {:?}`, and virsh's users (and scripts) expect `error: ...` lines. `rvirsh::run` returns
// the `anyhow::Result`; this only prints it.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match rvirsh::run(&args).await {
        Ok(code) => code,
        Err(error) => {
            rvirsh::report(&error);
            ExitCode::FAILURE
        }
    }
}
