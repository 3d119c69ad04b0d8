//! The visual report (`csi-events run --report FILE.html`, `docs/scenarios.md` §5): one
//! self-contained HTML file. The run's JSON — exactly what `--format json` prints — is
//! embedded once in `<script type="application/json" id="run">`, and a small script written
//! here draws everything from it with plain SVG: an index of every scenario, then per
//! scenario a time chart (node lanes with attachment spans, migration windows with their
//! deadlines, claim lanes with event markers, faults, restarts, problems) and tables of the
//! events, the skipped and dropped events and the snapshot difference.
//!
//! The file makes no request: its Content-Security-Policy allows nothing but its own inline
//! script and style. The same run gives the same bytes.
//!
//! ```
//! use csi_events::scenario::html;
//! let page = html::page("{\"scenarios\":[],\"passed\":0,\"failed\":0}");
//! assert!(page.contains("<script type=\"application/json\" id=\"run\">{\"scenarios\":[]"));
//! assert!(page.contains("default-src 'none'"));
//! ```

use super::report::{self, Verdict};

const STYLE: &str = include_str!("html/report.css");
const SCRIPT: &str = include_str!("html/report.js");

/// The policy: nothing may load; only the page's own inline script and style run.
pub const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/// The report of `verdicts`: [`page`] of [`report::json`].
pub fn html(verdicts: &[Verdict]) -> String {
    page(report::json(verdicts).trim_end())
}

/// The page around `json` (the run's JSON text).
pub fn page(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + STYLE.len() + SCRIPT.len() + 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"");
    out.push_str(CSP);
    out.push_str("\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta name=\"color-scheme\" content=\"light dark\">\n");
    out.push_str("<title>csi-events scenario report</title>\n<style>\n");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<h1>csi-events scenario report</h1>\n");
    out.push_str("<noscript><p>The charts are drawn by the script in this page; the run's data is in the <code>run</code> element below.</p></noscript>\n");
    out.push_str("<main id=\"main\"></main>\n<script type=\"application/json\" id=\"run\">");
    out.push_str(&embed(json));
    out.push_str("</script>\n<script>\n");
    out.push_str(SCRIPT);
    out.push_str("</script>\n</body>\n</html>\n");
    out
}

/// `json` made safe inside a `<script>` element: `<`, `>` and `&` as JSON `\u` escapes (they
/// only occur inside JSON strings, where the escape means the same character), so no `</script>`
/// or `<!--` can end or change the element; U+2028 and U+2029 likewise.
pub fn embed(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load::load_text;
    use crate::scenario::runner::{Target, run};

    fn verdicts() -> Vec<Verdict> {
        let text = "name: tricky\ncluster:\n  nodes: [node-a, node-b]\n  claims: [vms/disk-0]\n  volumes: [{id: pvc-1, claim: vms/disk-0, accessMode: RWX}]\nsteps:\n  - attach: {volume: pvc-1, node: node-a}\n  - advance: 10s\n  - attach: {volume: pvc-1, node: node-b}\n  - expectEvents: [{reason: VolumeAttached}, {message: \"</script><!-- & >\"}]\n";
        let scenario = load_text("x.yaml", text).unwrap();
        let result = run(&scenario, &Target::Embedded).unwrap();
        vec![Verdict {
            name: scenario.name.clone(),
            file: scenario.file.clone(),
            failures: result.failures.clone(),
            run: Some(result),
            snapshot_diff: Some(("a: 1".into(), "a: 2 </script>".into())),
            seconds: 0.25,
            notes: vec![],
        }]
    }

    /// The text of the `run` element.
    fn embedded(page: &str) -> &str {
        let open = "<script type=\"application/json\" id=\"run\">";
        let start = page.find(open).unwrap() + open.len();
        let end = start + page[start..].find("</script>").unwrap();
        &page[start..end]
    }

    #[test]
    fn the_same_run_gives_the_same_bytes() {
        let v = verdicts();
        assert_eq!(html(&v), html(&v));
        // Two runs of the same scenario too (wall time is not in the page).
        let mut again = verdicts();
        again[0].seconds = 9.0;
        assert_eq!(html(&v), html(&again));
    }

    #[test]
    fn the_json_is_embedded_once_and_decodes_to_what_format_json_prints() {
        let v = verdicts();
        let page = html(&v);
        assert_eq!(page.matches("id=\"run\"").count(), 1);
        let decoded: serde_json::Value = serde_json::from_str(embedded(&page)).unwrap();
        let printed: serde_json::Value = serde_json::from_str(&report::json(&v)).unwrap();
        assert_eq!(decoded, printed);
        // The failing expectation and the timeline are in it.
        assert_eq!(printed["failed"], 1);
        assert!(printed["scenarios"][0]["timeline"]["nodes"].is_array());
    }

    #[test]
    fn nothing_in_the_data_can_close_the_script_element() {
        let page = html(&verdicts());
        let data = embedded(&page);
        assert!(!data.contains('<') && !data.contains('>') && !data.contains('&'));
        assert!(data.contains("\\u003c/script\\u003e\\u003c!-- \\u0026 \\u003e"));
        // Exactly two script elements: the data and the drawing.
        assert_eq!(page.matches("<script").count(), 2);
        assert_eq!(page.matches("</script>").count(), 2);
        assert_eq!(embed("a\u{2028}b"), "a\\u2028b");
    }

    #[test]
    fn the_page_can_request_nothing() {
        let page = html(&verdicts());
        assert!(page.contains(&format!("content=\"{CSP}\"")));
        for forbidden in [
            " src=",
            " href=\"http",
            "url(",
            "@import",
            "fetch(",
            "XMLHttpRequest",
        ] {
            assert!(!page.contains(forbidden), "the page contains {forbidden:?}");
        }
    }
}
