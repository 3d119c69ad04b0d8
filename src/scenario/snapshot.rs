//! Snapshots: insta `.snap` files in the top-level `snapshots/` folder, one per scenario,
//! named after the scenario (`snapshots/<name>.snap`).
//!
//! `tests/scenarios.rs` asserts them with insta itself; the `csi-events` command reads and
//! writes the same files: on a difference it leaves insta's pending `<name>.snap.new` beside
//! the snapshot (so `cargo insta review` shows and accepts it), and `--accept` writes the
//! snapshot directly.
//!
//! ```
//! use csi_events::scenario::snapshot::{file_text, contents};
//! let text = file_text("steps: []\n");
//! assert_eq!(contents(&text), Some("steps: []"));
//! ```

use std::path::{Path, PathBuf};

/// The `source` insta records: the test that asserts the snapshots.
pub const SOURCE: &str = "tests/scenarios.rs";

/// The snapshot folder of a checkout (`snapshots/` beside `scenarios/`).
pub const DEFAULT_DIR: &str = "snapshots";

/// How a transcript compares with its snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// Same content.
    Matches,
    /// No snapshot yet.
    Missing,
    /// The snapshot holds something else (its content is given).
    Differs(String),
}

/// `<dir>/<name>.snap`.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.snap"))
}

/// `<dir>/<name>.snap.new` (insta's pending snapshot).
pub fn pending_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.snap.new"))
}

/// A snapshot file's text for `contents`, with the header insta writes for these tests.
pub fn file_text(contents: &str) -> String {
    format!("---\nsource: {SOURCE}\n---\n{}\n", contents.trim_end())
}

/// The content of a snapshot file's text (after its header), trailing newlines cut.
pub fn contents(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    Some(rest[end + 5..].trim_end())
}

/// Compares `transcript` (YAML) with the snapshot of `name` in `dir`.
pub fn compare(dir: &Path, name: &str, transcript: &str) -> Comparison {
    match std::fs::read_to_string(path(dir, name)) {
        Ok(text) => match contents(&normalize(&text)) {
            Some(old) if old == transcript.trim_end() => Comparison::Matches,
            Some(old) => Comparison::Differs(old.to_owned()),
            None => Comparison::Differs(text),
        },
        Err(_) => Comparison::Missing,
    }
}

fn normalize(text: &str) -> String {
    text.replace("\r\n", "\n")
}

/// Writes insta's pending snapshot `<name>.snap.new` for review.
pub fn write_pending(dir: &Path, name: &str, transcript: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let target = pending_path(dir, name);
    std::fs::write(&target, file_text(transcript))?;
    Ok(target)
}

/// Accepts `transcript` as the snapshot of `name` (and removes a pending one).
pub fn accept(dir: &Path, name: &str, transcript: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let target = path(dir, name);
    std::fs::write(&target, file_text(transcript))?;
    let pending = pending_path(dir, name);
    if pending.exists() {
        std::fs::remove_file(pending)?;
    }
    Ok(target)
}

/// Removes a stale pending snapshot (the transcript matches again).
pub fn clear_pending(dir: &Path, name: &str) {
    let _ = std::fs::remove_file(pending_path(dir, name));
}

/// A unified line diff of `old` → `new`; `color` adds ANSI red/green.
pub fn diff(old: &str, new: &str, color: bool) -> String {
    use similar::{ChangeTag, TextDiff};
    let diff = TextDiff::from_lines(old, new);
    let mut out = String::new();
    for group in diff.grouped_ops(3) {
        out.push_str("  @@\n");
        for op in group {
            for change in diff.iter_changes(&op) {
                let (sign, on, off) = match change.tag() {
                    ChangeTag::Delete => ("-", "\u{1b}[31m", "\u{1b}[0m"),
                    ChangeTag::Insert => ("+", "\u{1b}[32m", "\u{1b}[0m"),
                    ChangeTag::Equal => (" ", "", ""),
                };
                let line = change.value().trim_end_matches('\n');
                if color && !on.is_empty() {
                    out.push_str(&format!("  {on}{sign}{line}{off}\n"));
                } else {
                    out.push_str(&format!("  {sign}{line}\n"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_write_pending_and_accept() {
        let dir = std::env::temp_dir().join(format!("csi-events-snap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(compare(&dir, "s", "a: 1\n"), Comparison::Missing);
        accept(&dir, "s", "a: 1\n").unwrap();
        assert_eq!(compare(&dir, "s", "a: 1\n"), Comparison::Matches);
        assert_eq!(compare(&dir, "s", "a: 2\n"), Comparison::Differs("a: 1".into()));
        let pending = write_pending(&dir, "s", "a: 2\n").unwrap();
        assert!(pending.ends_with("s.snap.new"));
        accept(&dir, "s", "a: 2\n").unwrap();
        assert!(!pending.exists());
        assert_eq!(compare(&dir, "s", "a: 2"), Comparison::Matches);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn diff_marks_lines_and_colours_only_when_asked() {
        let plain = diff("a\nb\n", "a\nc\n", false);
        assert!(plain.contains("  -b\n") && plain.contains("  +c\n"), "{plain}");
        assert!(!plain.contains('\u{1b}'));
        assert!(diff("a\nb\n", "a\nc\n", true).contains("\u{1b}[31m-b"));
    }
}
