//! `cargo xtask tidy`: conventions a reviewer should not have to check by eye. Every `.rs` file
//! opens with a `//!` comment; every daemon module is named in ARCHITECTURE.md's code map; the
//! daemon never prints to stdout outside its tests (it logs with tracing). Runs as a `#[test]` too.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// Checks the tree under `root`; lists every violation.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let problems = check(root)?;
    if problems.is_empty() {
        println!("tidy: ok");
        return Ok(());
    }
    for problem in &problems {
        eprintln!("tidy: {problem}");
    }
    bail!("{} convention problem(s)", problems.len())
}

fn check(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).context("reading ARCHITECTURE.md")?;
    for dir in ["proto", "daemon", "client", "rvirsh", "xtask", "tests"] {
        for file in rust_files(&root.join(dir))? {
            let text = std::fs::read_to_string(&file)?;
            let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
            if !text.starts_with("//!") {
                problems.push(format!("{shown}: does not open with a //! comment saying what it holds"));
            }
            if file.starts_with(root.join("daemon/src")) {
                // Test code may print what it measured; the daemon itself may not.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                let test_only = matches!(file.file_stem().and_then(|s| s.to_str()), Some("tests" | "model"));
                if !test_only && code.lines().any(|line| line.trim_start().starts_with("println!")) {
                    problems.push(format!("{shown}: println! in daemon code; log with tracing"));
                }
                let module = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                let is_module =
                    file.starts_with(root.join("daemon/src")) && !matches!(module, "lib" | "main" | "mod");
                if is_module && !architecture.contains(&format!("`{module}`")) {
                    problems.push(format!("{shown}: module `{module}` is not in ARCHITECTURE.md's code map"));
                }
            }
        }
    }
    Ok(problems)
}

fn rust_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tree_is_tidy() {
        let problems = super::check(&super::super::root()).unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
