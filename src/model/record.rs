//! The migration record (lifecycle.md "Restart"): what the model knows about a running or
//! failed migration, kept on the cluster so a restarted controller rebuilds it exactly.
//!
//! The record is the annotation [`MIGRATION_ANNOTATION`] on the volume's PersistentVolume, a
//! JSON object:
//!
//! ```json
//! {"version":1,"source":"node-a","target":"node-b",
//!  "started":"2026-01-01T00:00:01.5Z","timeoutSeconds":300,"failed":false}
//! ```
//!
//! `started` is RFC 3339 to the nanosecond (a VolumeAttachment's creation time has whole
//! seconds only), `failed` says the failure was already reported. The annotation is written
//! when the migration starts and when it fails, and removed when it ends. A record that cannot
//! be read (another `version`, bad JSON) is ignored by [`Controller::rebuild`](super::Controller::rebuild),
//! which then falls back to the VolumeAttachments' creation times and says so in its log.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::state::Migration;
use crate::ids::NodeName;

/// The PersistentVolume annotation holding a volume's migration record.
pub const MIGRATION_ANNOTATION: &str = "csi-events.srvlab.io/migration";

/// The record format this version writes and reads.
const VERSION: u32 = 1;

/// A migration as the cluster keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MigrationRecord {
    pub source: NodeName,
    pub target: NodeName,
    pub started: Timestamp,
    pub timeout: Duration,
    pub failed: bool,
}

/// The JSON shape of a record.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    version: u32,
    source: String,
    target: String,
    started: String,
    timeout_seconds: u64,
    failed: bool,
}

impl MigrationRecord {
    /// The record of `migration`.
    pub fn of(migration: &Migration) -> Self {
        Self {
            source: migration.source.clone(),
            target: migration.target.clone(),
            started: migration.started,
            timeout: migration.timeout,
            failed: migration.failed,
        }
    }

    /// The annotation's value.
    pub fn to_json(&self) -> String {
        let wire = Wire {
            version: VERSION,
            source: self.source.as_str().to_owned(),
            target: self.target.as_str().to_owned(),
            started: self.started.to_string(),
            // Timeouts are whole seconds (lifecycle.md "Time"); a fraction is rounded up so the
            // rebuilt deadline is never earlier than the original one.
            timeout_seconds: self.timeout.as_secs() + u64::from(self.timeout.subsec_nanos() > 0),
            failed: self.failed,
        };
        // A struct of strings, integers and booleans always serialises.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Reads an annotation's value; the error says why it is unusable.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("it is not JSON ({e})"))?;
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(VERSION)) {
            return Err(format!(
                "it has version {}, this controller reads version {VERSION}",
                version.map_or_else(|| "none".to_owned(), |v| v.to_string())
            ));
        }
        let wire: Wire = serde_json::from_value(value)
            .map_err(|e| format!("it is not a version {VERSION} record ({e})"))?;
        let started: Timestamp = wire
            .started
            .parse()
            .map_err(|e| format!("`started` {:?} is not an RFC 3339 time ({e})", wire.started))?;
        if wire.source.is_empty() || wire.target.is_empty() || wire.source == wire.target {
            return Err(format!(
                "it names source {:?} and target {:?}: two different nodes are needed",
                wire.source, wire.target
            ));
        }
        if wire.timeout_seconds == 0 {
            return Err("`timeoutSeconds` is 0".to_owned());
        }
        Ok(Self {
            source: NodeName::from(wire.source),
            target: NodeName::from(wire.target),
            started,
            timeout: Duration::from_secs(wire.timeout_seconds),
            failed: wire.failed,
        })
    }

    /// Whether the record is about the two nodes `a` and `b` (in either order).
    pub fn names(&self, a: &NodeName, b: &NodeName) -> bool {
        (self.source == *a && self.target == *b) || (self.source == *b && self.target == *a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> MigrationRecord {
        MigrationRecord {
            source: "node-a".into(),
            target: "node-b".into(),
            started: "2026-01-01T00:00:01.000000001Z".parse().expect("time"),
            timeout: Duration::from_secs(300),
            failed: true,
        }
    }

    #[test]
    fn round_trips_to_the_nanosecond() {
        let json = record().to_json();
        assert_eq!(
            json,
            r#"{"version":1,"source":"node-a","target":"node-b","started":"2026-01-01T00:00:01.000000001Z","timeoutSeconds":300,"failed":true}"#
        );
        assert_eq!(MigrationRecord::parse(&json), Ok(record()));
    }

    #[test]
    fn unusable_records_say_why() {
        let cases = [
            ("{", "not JSON"),
            (r#"{"source":"a"}"#, "version none"),
            (r#"{"version":2}"#, "version 2"),
            (r#"{"version":1,"source":"a"}"#, "not a version 1 record"),
            (
                r#"{"version":1,"source":"a","target":"b","started":"yesterday","timeoutSeconds":3,"failed":false}"#,
                "RFC 3339",
            ),
            (
                r#"{"version":1,"source":"a","target":"a","started":"2026-01-01T00:00:00Z","timeoutSeconds":3,"failed":false}"#,
                "two different nodes",
            ),
            (
                r#"{"version":1,"source":"a","target":"b","started":"2026-01-01T00:00:00Z","timeoutSeconds":0,"failed":false}"#,
                "is 0",
            ),
        ];
        for (text, why) in cases {
            let error = MigrationRecord::parse(text).expect_err(text);
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn names_either_order() {
        let r = record();
        assert!(r.names(&"node-a".into(), &"node-b".into()));
        assert!(r.names(&"node-b".into(), &"node-a".into()));
        assert!(!r.names(&"node-a".into(), &"node-c".into()));
    }
}
