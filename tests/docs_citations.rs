//! Every citation of the project's docs in the Rust sources resolves.
//!
//! The module docs cite the behaviour contract under `docs/` by path and section
//! (`docs/lifecycle.md` §Restart, `docs/events.md` §5; `docs/README.md` §Citing says how). This
//! test reads every `*.rs` file of the workspace and fails when a cited file does not exist,
//! when a cited section is not a heading of that file, or when a source or a Markdown file
//! cites a document outside the repository. It also checks that the relative links between
//! the pages of `docs/` point at files that exist.

use std::fs;
use std::path::{Path, PathBuf};

/// The repository root (this crate is the workspace's root package).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` whose name ends with `suffix`, skipping build output and hidden
/// folders.
fn files_ending(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name == "target" || name.starts_with('.') {
                continue;
            }
            files_ending(&path, suffix, out);
        } else if name.ends_with(suffix) {
            out.push(path);
        }
    }
}

/// One citation of a docs page: where it is, the file it names, the sections it names.
#[derive(Debug)]
struct Citation {
    at: String,
    file: String,
    sections: Vec<String>,
}

/// The citations on one line of source.
fn citations_in(line: &str, at: &str) -> Vec<Citation> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("docs/") {
        let after = &rest[start + "docs/".len()..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .unwrap_or(after.len());
        let name = after[..name_len].trim_end_matches('.');
        rest = &after[name_len..];
        if !name.ends_with(".md") {
            continue;
        }
        // The sections belong to this citation up to the next one, a closing bracket or a
        // semicolon: `(docs/fidelity.md §1.1, §1.3, §4)`.
        let segment_end = rest
            .find([')', ';'])
            .unwrap_or(rest.len())
            .min(rest.find("docs/").unwrap_or(rest.len()));
        let sections = rest[..segment_end]
            .split('§')
            .skip(1)
            .filter_map(section_token)
            .collect();
        found.push(Citation {
            at: at.to_owned(),
            file: name.to_owned(),
            sections,
        });
    }
    found
}

/// The section a `§` introduces: a number (`5`, `1.2`) or a word (`Restart`).
fn section_token(text: &str) -> Option<String> {
    let text = text.trim_start_matches(['"', '`', ' ']);
    let token: String = if text.starts_with(|c: char| c.is_ascii_digit()) {
        text.chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect::<String>()
            .trim_end_matches('.')
            .to_owned()
    } else {
        text.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '-')
            .collect()
    };
    (!token.is_empty()).then_some(token)
}

/// The headings of a Markdown file, without their `#`s.
fn headings(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code && line.starts_with('#') {
            out.push(line.trim_start_matches('#').trim().to_owned());
        }
    }
    out
}

/// Whether `section` names one of `headings`: `1.2` matches `1.2 Rules…` or `1. Reasons…`
/// (for `1`), a word matches a heading that starts with it (after any number).
fn has_section(headings: &[String], section: &str) -> bool {
    headings.iter().any(|heading| {
        if section.starts_with(|c: char| c.is_ascii_digit()) {
            let number: String = heading
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            number.trim_end_matches('.') == section
        } else {
            let words = heading.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
            let first = words
                .split(|c: char| !(c.is_alphanumeric() || c == '-'))
                .find(|w| !w.is_empty())
                .unwrap_or("");
            first.eq_ignore_ascii_case(section)
        }
    })
}

fn all_citations() -> Vec<Citation> {
    let root = root();
    let mut files = Vec::new();
    files_ending(&root, ".rs", &mut files);
    files.sort();
    let mut citations = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (n, line) in text.lines().enumerate() {
            citations.extend(citations_in(line, &format!("{shown}:{}", n + 1)));
        }
    }
    citations
}

#[test]
fn every_docs_citation_in_the_sources_names_an_existing_file_and_section() {
    let root = root();
    let citations = all_citations();
    // The module docs cite the contract in dozens of places; finding almost none means this
    // scan is broken, not that the sources are clean.
    assert!(
        citations.len() >= 30,
        "only {} docs citations found in the sources: is the scan still reading them?",
        citations.len()
    );
    let mut problems = Vec::new();
    for citation in &citations {
        let path = root.join("docs").join(&citation.file);
        let Ok(text) = fs::read_to_string(&path) else {
            problems.push(format!(
                "{}: cites docs/{}, which does not exist (the pages are listed in docs/README.md)",
                citation.at, citation.file
            ));
            continue;
        };
        let headings = headings(&text);
        for section in &citation.sections {
            if !has_section(&headings, section) {
                problems.push(format!(
                    "{}: cites docs/{} §{section}, but no heading of that page is numbered or named so (headings: {})",
                    citation.at,
                    citation.file,
                    headings.join(" | ")
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_source_or_readme_cites_a_document_outside_the_repository() {
    let root = root();
    let mut files = Vec::new();
    files_ending(&root, ".rs", &mut files);
    files_ending(&root, ".md", &mut files);
    files.sort();
    // Built at run time so that this file does not match itself.
    let outside = [
        format!("{}/{}", "shared", "spec"),
        format!("{}/{}", "shared", "reference"),
        format!("../{}", "shared"),
    ];
    let mut problems = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        for (n, line) in text.lines().enumerate() {
            if let Some(bad) = outside.iter().find(|bad| line.contains(bad.as_str())) {
                problems.push(format!(
                    "{}:{}: cites `{bad}`, which is not in the repository: cite the page under docs/ instead",
                    file.strip_prefix(&root).unwrap_or(&file).display(),
                    n + 1
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn links_between_the_docs_pages_point_at_existing_files() {
    let docs = root().join("docs");
    let entries = fs::read_dir(&docs).expect("the docs/ folder exists at the repository root");
    let mut checked = 0;
    let mut problems = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = fs::read_to_string(&path).expect("a docs page is readable text");
        let mut rest = text.as_str();
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = &after[..end];
            rest = &after[end..];
            if target.contains("://") || target.starts_with('#') {
                continue;
            }
            let file = target.split('#').next().unwrap_or(target);
            checked += 1;
            if !docs.join(file).exists() {
                problems.push(format!(
                    "docs/{}: links to `{target}`, which does not exist",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ));
            }
        }
    }
    assert!(checked > 0, "no links found between the docs pages");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_citation_parser_reads_files_and_sections() {
    let found = citations_in(
        "//! order (`docs/fidelity.md` §1.1, §1.3, §4, §5), and `docs/lifecycle.md` §Deleted.",
        "x.rs:1",
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].file, "fidelity.md");
    assert_eq!(found[0].sections, ["1.1", "1.3", "4", "5"]);
    assert_eq!(found[1].file, "lifecycle.md");
    assert_eq!(found[1].sections, ["Deleted"]);
    let headings =
        headings("# T\n## 1. Reasons\n### 1.2 Rules\n## Deleted nodes\n```\n# no\n```\n");
    assert!(has_section(&headings, "1"));
    assert!(has_section(&headings, "1.2"));
    assert!(has_section(&headings, "deleted"));
    assert!(!has_section(&headings, "2"));
    assert!(!has_section(&headings, "no"));
    assert!(!has_section(&headings, "nodes"));
}
