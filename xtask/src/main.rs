//! `cargo xtask`: project automation. A flat match on the subcommand; each task in its own module.

mod tidy;

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("tidy") => tidy::run(&root()),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\ntasks:\n  tidy    check project conventions (also run by `cargo test`)"
            );
            std::process::exit(2);
        }
    }
}

/// The workspace root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}
