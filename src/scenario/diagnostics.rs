//! Problems found in scenario files, and how they are shown: `file:line:column`, the line
//! itself with a marker under the value, and a hint (miette's graphical report).

use std::fmt;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, NamedSource, SourceSpan};

use super::format::Position;

/// One problem in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where (line 0 when the file could not be read at all).
    pub at: Position,
    /// What is wrong.
    pub message: String,
    /// A short label under the value.
    pub label: Option<String>,
    /// How to fix it (valid values, "did you mean").
    pub help: Option<String>,
}

impl Problem {
    /// A problem at `at`.
    pub fn new(at: Position, message: impl Into<String>) -> Self {
        Self {
            at,
            message: message.into(),
            label: None,
            help: None,
        }
    }

    /// Sets the label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the hint.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Every problem of one file, with its text (to show the lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblems {
    /// The file as given.
    pub path: String,
    /// Its text.
    pub source: String,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl FileProblems {
    /// `file:line:column: message` lines, one per problem (for logs and JSON).
    pub fn short_lines(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|p| {
                format!(
                    "{}:{}:{}: {}",
                    self.path, p.at.line, p.at.column, p.message
                )
            })
            .collect()
    }

    /// The problems as miette reports: a `file:line:column: message` line, then the source
    /// line with the value marked, then the hint. `color` picks ANSI colours.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_wrap_lines(false);
        let mut out = String::new();
        for problem in &self.problems {
            out.push_str(&format!(
                "{}:{}:{}: error: {}\n",
                self.path, problem.at.line, problem.at.column, problem.message
            ));
            let report = ProblemReport::new(self, problem);
            let mut text = String::new();
            if handler.render_report(&mut text, &report).is_ok() {
                out.push_str(&text);
            }
            out.push('\n');
        }
        out
    }
}

/// A problem as a miette diagnostic.
#[derive(Debug, Diagnostic)]
struct ProblemReport {
    message: String,
    #[source_code]
    source: NamedSource<String>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    help: Option<String>,
}

impl fmt::Display for ProblemReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProblemReport {}

impl ProblemReport {
    fn new(file: &FileProblems, problem: &Problem) -> Self {
        let span = span_of(&file.source, problem.at);
        Self {
            message: problem.message.clone(),
            source: NamedSource::new(file.path.clone(), file.source.clone()),
            span,
            label: problem.label.clone().unwrap_or_else(|| "here".to_owned()),
            help: problem.help.clone(),
        }
    }
}

/// The byte span of the value starting at `at` (up to the end of its token).
fn span_of(source: &str, at: Position) -> Option<SourceSpan> {
    if at.line == 0 {
        return None;
    }
    let mut offset = 0;
    for (index, line) in source.split_inclusive('\n').enumerate() {
        if index + 1 == at.line as usize {
            let column = (at.column.max(1) - 1) as usize;
            let start = line
                .char_indices()
                .nth(column)
                .map(|(i, _)| i)
                .unwrap_or(line.trim_end().len());
            let rest = &line[start..];
            let len = token_len(rest).max(1).min(rest.trim_end().len().max(1));
            return Some(SourceSpan::new((offset + start).into(), len));
        }
        offset += line.len();
    }
    None
}

/// The length of the token at the start of `text`: a quoted string, a flow collection, or
/// a plain scalar up to a delimiter.
fn token_len(text: &str) -> usize {
    let trimmed = text.trim_end_matches(['\n', '\r']);
    let mut chars = trimmed.char_indices();
    match chars.next() {
        Some((_, quote @ ('"' | '\''))) => trimmed[1..]
            .find(quote)
            .map(|i| i + 2)
            .unwrap_or(trimmed.len()),
        Some((_, '{' | '[')) => trimmed.len(),
        Some(_) => {
            let end = [", ", ",", "}", "]", " #", ": "]
                .iter()
                .filter_map(|stop| trimmed.find(stop))
                .min()
                .unwrap_or(trimmed.len());
            trimmed[..end].trim_end().len()
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendering_names_the_place_shows_the_line_and_the_hint() {
        let file = FileProblems {
            path: "scenarios/x.yaml".into(),
            source: "name: x\nsteps:\n  - atach: {volume: v}\n".into(),
            problems: vec![
                Problem::new(Position { line: 3, column: 5 }, "unknown step `atach`")
                    .label("not a step")
                    .help("did you mean `attach`?"),
            ],
        };
        let text = file.render(false);
        assert!(text.starts_with("scenarios/x.yaml:3:5: error: unknown step `atach`\n"), "{text}");
        assert!(text.contains("  - atach: {volume: v}"), "{text}");
        assert!(text.contains("not a step"), "{text}");
        assert!(text.contains("did you mean `attach`?"), "{text}");
        assert!(!text.contains('\u{1b}'), "no colour asked: {text}");
    }

    #[test]
    fn spans_cover_the_value() {
        let source = "a: [node-a, Node_B]\n";
        let span = span_of(source, Position { line: 1, column: 13 }).unwrap();
        assert_eq!(&source[span.offset()..span.offset() + span.len()], "Node_B");
    }
}
