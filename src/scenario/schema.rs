//! The JSON Schema of scenario files (generated from [`super::format`] with schemars), which
//! editors use through the `# yaml-language-server: $schema=scenario.schema.json` modeline.

use super::format::ScenarioFile;

/// The schema as pretty JSON with a trailing newline (what `scenarios/scenario.schema.json`
/// holds and `csi-events schema` prints).
///
/// ```
/// let schema = csi_events::scenario::schema::schema_json();
/// assert!(schema.contains("\"expectEvents\""));
/// ```
pub fn schema_json() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<ScenarioFile>();
    // A schema is plain JSON values; serializing it cannot fail.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
