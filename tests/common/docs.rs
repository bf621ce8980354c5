//! The fenced code blocks of README.md and docs/*.md, for the tests that run them. A block is
//! marked by an HTML comment on the line right above its fence:
//!   (none)                          run against a started gateway (`sh`), or checked (`toml`)
//!   `<!-- test: skip REASON -->`    not run; the test prints `SKIPPED: FILE:LINE: REASON`
//!   `<!-- test: background -->`     started and left running while the next blocks run (once
//!                                   it printed a line, or with `background until TEXT` once
//!                                   it printed TEXT); its output is checked at the end
//!   `<!-- test: config -->`         (toml) checked, then the gateway restarts with it
//!   `<!-- test: systemd -->`        run by tests/ops/ops_systemd_boot.rs inside a booted systemd
//! Lines starting with `#> ` after a command are output the command must print.

use std::path::{Path, PathBuf};

/// One fenced block.
#[derive(Debug, Clone)]
pub struct Block {
    /// file, relative to the crate root
    pub file: String,
    /// line of the opening fence (1-based)
    pub line: usize,
    /// info string: `sh`, `toml`, `json`, ...
    pub lang: String,
    /// the marker above the fence (`skip ...`, `background`, `systemd`), if any
    pub marker: Option<String>,
    /// the block's text, without the fences
    pub text: String,
}

impl Block {
    /// `FILE:LINE`, for messages.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The expected output lines (`#> ...`), in order.
    pub fn expected(&self) -> Vec<String> {
        self.text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("#> "))
            .map(str::to_owned)
            .collect()
    }
}

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, then docs/*.md in name order.
pub fn files() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    docs.retain(|p| p.extension().is_some_and(|e| e == "md"));
    docs.sort();
    let mut all = vec![root().join("README.md")];
    all.extend(docs);
    all
}

/// The blocks of one file.
pub fn blocks(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let file = path
        .strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let marker = i
            .checked_sub(1)
            .and_then(|p| lines[p].trim().strip_prefix("<!-- test:"))
            .and_then(|m| m.strip_suffix("-->"))
            .map(|m| m.trim().to_owned());
        let start = i;
        i += 1;
        let mut body = Vec::new();
        while i < lines.len() && !lines[i].starts_with("```") {
            body.push(lines[i]);
            i += 1;
        }
        out.push(Block {
            file: file.clone(),
            line: start + 1,
            lang: lang.trim().to_owned(),
            marker,
            text: body.join("\n") + "\n",
        });
        i += 1;
    }
    out
}

/// Every block of README.md and docs/*.md.
pub fn all_blocks() -> Vec<Block> {
    files().iter().flat_map(|f| blocks(f)).collect()
}
