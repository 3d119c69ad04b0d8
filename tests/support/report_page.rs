//! Reading a `--report` page back in tests.

/// The text of the report's `run` element (the run's JSON, as embedded once).
pub fn embedded(page: &str) -> &str {
    let open = "<script type=\"application/json\" id=\"run\">";
    let start = page.find(open).expect("the run element") + open.len();
    let end = start + page[start..].find("</script>").expect("its end");
    &page[start..end]
}
