//! The scenario file as QA write it: the YAML shape (serde + schemars), strict, with source
//! positions on every value a later check may point at.
//!
//! This is the raw, parsed form. [`super::schema`] turns it into a checked
//! [`Scenario`](super::Scenario) (names, references, durations), so the runner never sees an
//! unchecked value.
//!
//! ```
//! use csi_events::scenario::format::{ScenarioFile, Step};
//! let yaml = "name: demo\ncluster: {nodes: [node-a]}\nsteps:\n  - addNode: node-b\n";
//! let file: ScenarioFile = serde_saphyr::from_str(yaml).unwrap();
//! assert_eq!(file.name.value, "demo");
//! assert!(matches!(file.steps[0].value, Step::AddNode(_)));
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};

use crate::model::AccessMode;

/// Where a value stands in its file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in characters).
    pub column: u32,
}

/// A value with the position it was written at.
///
/// Deserializes like `T` (through `serde_saphyr::Spanned`) and has `T`'s JSON Schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written (for an alias: where it is used).
    pub at: Position,
}

impl<T> Located<T> {
    /// A value at a position (for files built in code).
    pub fn new(value: T, at: Position) -> Self {
        Self { value, at }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        let at = Position {
            line: u32::try_from(spanned.referenced.line()).unwrap_or(u32::MAX),
            column: u32::try_from(spanned.referenced.column()).unwrap_or(u32::MAX),
        };
        Ok(Self {
            value: spanned.value,
            at,
        })
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}

/// A Go-style duration as written (`90s`, `2m15s`, `153ms`, `1h`); checked at load.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DurationText(pub String);

impl JsonSchema for DurationText {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A Go-style duration: numbers with units h, m, s, ms, us, ns (e.g. 90s, 2m15s, 153ms, 1h).",
            "pattern": "^([0-9]+(\\.[0-9]+)?(h|m|s|ms|us|µs|ns))+$",
            "examples": ["90s", "2m15s", "153ms", "1h"]
        })
    }
}

/// A text that YAML may also give as a number (`"300"` or `300`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Int(i64),
            Float(f64),
        }
        Ok(Text(match Either::deserialize(deserializer)? {
            Either::Text(text) => text,
            Either::Int(n) => n.to_string(),
            Either::Float(f) => f.to_string(),
        }))
    }
}

impl JsonSchema for Text {
    fn schema_name() -> Cow<'static, str> {
        "TextOrNumber".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": ["string", "integer"]})
    }
}

/// One scenario file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "csi-events scenario")]
pub struct ScenarioFile {
    /// Unique in the suite; names the snapshot (`snapshots/<name>.snap`). DNS-1123.
    pub name: Located<String>,
    /// What the scenario proves.
    #[serde(default)]
    pub description: Option<String>,
    /// Seeds retry jitter and generated names/uids (default 0).
    #[serde(default)]
    pub seed: Option<u64>,
    /// The cluster at the start.
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// The steps, in order; each is one key.
    pub steps: Vec<Located<Step>>,
}

/// The cluster at the start of a scenario.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Nodes that exist at the start.
    #[serde(default)]
    pub nodes: Vec<Located<String>>,
    /// PersistentVolumeClaims that exist at the start (`namespace/name`).
    #[serde(default)]
    pub claims: Vec<Located<String>>,
    /// PersistentVolumes (CSI volumes) that exist at the start.
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
}

/// One CSI volume (= PersistentVolume).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeSpec {
    /// The CSI volume id = the PV's name.
    pub id: Located<String>,
    /// The PV's claimRef (`namespace/name`); omit for a PV without claimRef. A claim not listed
    /// in `cluster.claims` does not exist (the PVC-missing path).
    #[serde(default)]
    pub claim: Option<Located<String>>,
    /// RWO (default) or RWX.
    #[serde(default)]
    pub access_mode: Option<Located<AccessMode>>,
    /// The volume context's `migrationTimeoutSeconds`, as the StorageClass gives it.
    #[serde(default)]
    pub migration_timeout_seconds: Option<Located<Text>>,
    /// Whether publish's volume context carries the `csi.storage.k8s.io/pvc/*` keys.
    #[serde(default)]
    pub claim_in_context: bool,
}

/// The scenario format of the model's access mode: `RWO` or `RWX`.
impl<'de> Deserialize<'de> for AccessMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = AccessMode;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("RWO or RWX")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<AccessMode, E> {
                text.parse()
                    .map_err(|_| E::unknown_variant(text, ACCESS_MODES))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// The values of `accessMode`.
const ACCESS_MODES: &[&str] = &["RWO", "RWX"];

impl JsonSchema for AccessMode {
    fn schema_name() -> Cow<'static, str> {
        "AccessModeSpec".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A volume's access mode.",
            "oneOf": [
                {"description": "ReadWriteOnce.", "type": "string", "const": "RWO"},
                {"description": "ReadWriteMany.", "type": "string", "const": "RWX"}
            ]
        })
    }
}

/// One step (each one key).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Step {
    /// ControllerPublishVolume with the volume's access mode and context.
    Attach(AttachStep),
    /// ControllerUnpublishVolume.
    Detach(DetachStep),
    /// Moves the virtual clock; due timers (migration timeouts, retry backoffs) fire in order.
    Advance(Located<DurationText>),
    /// A node appears.
    AddNode(Located<String>),
    /// A node is deleted (`{name, observed: false}`: the node watcher misses it).
    DeleteNode(DeleteNodeStep),
    /// The claim appears (with a new uid); no PV is touched.
    CreateClaim(Located<String>),
    /// The claim is deleted; no PV is touched.
    DeleteClaim(Located<String>),
    /// All in-memory state is lost and rebuilt from VolumeAttachments (`{down: 10m}`: the
    /// controller stays down that long first, while the clock moves).
    RestartController(RestartStep),
    /// The fake API server answers matching requests with an error or a delay.
    Fault(FaultStep),
    /// Removes every fault.
    ClearFaults(Empty),
    /// Exactly the events written since the previous `expectEvents` (or the start), in order.
    ExpectEvents(Vec<Located<EventMatcher>>),
    /// A metric's current value.
    ExpectMetric(MetricExpectation),
}

/// The step names, as written in files.
pub const STEP_NAMES: &[&str] = &[
    "attach",
    "detach",
    "advance",
    "addNode",
    "deleteNode",
    "createClaim",
    "deleteClaim",
    "restartController",
    "fault",
    "clearFaults",
    "expectEvents",
    "expectMetric",
];

/// `{}`: a step without parameters.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `restartController: {down?}`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RestartStep {
    /// How long the controller is down before it starts again (default 0): the clock moves
    /// with no controller running, so a migration timeout can pass unobserved.
    #[serde(default)]
    pub down: Option<Located<DurationText>>,
}

/// `attach: {volume, node, took?, expectError?}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AttachStep {
    /// The volume id.
    pub volume: Located<String>,
    /// The node.
    pub node: Located<String>,
    /// How long the publish took (reported in VolumeAttached; does not move the clock).
    #[serde(default)]
    pub took: Option<Located<DurationText>>,
    /// The gRPC code the call must fail with (`NotFound`, `FailedPrecondition`, ...).
    #[serde(default)]
    pub expect_error: Option<Located<String>>,
}

/// `detach: {volume, node, expectError?}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DetachStep {
    /// The volume id.
    pub volume: Located<String>,
    /// The node.
    pub node: Located<String>,
    /// The gRPC code the call must fail with.
    #[serde(default)]
    pub expect_error: Option<Located<String>>,
}

/// `deleteNode: name` or `deleteNode: {name, observed: false}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DeleteNodeStep {
    /// Just the node's name (the watcher sees the deletion).
    Name(Located<String>),
    /// The node and whether the watcher sees the deletion.
    Detailed(DeleteNodeDetails),
}

/// `{name, observed}` of `deleteNode`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteNodeDetails {
    /// The node.
    pub name: Located<String>,
    /// `false`: the node watcher misses the deletion (default `true`).
    #[serde(default = "yes")]
    pub observed: bool,
}

fn yes() -> bool {
    true
}

/// `fault: {verb, resource, name?, status?, reason?, retryAfter?, latency?, times?}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultStep {
    /// get, list, watch, create, update, patch, delete or deletecollection.
    pub verb: Located<String>,
    /// Resource plural (`events`, `persistentvolumeclaims`, `persistentvolumes`, ...).
    pub resource: Located<String>,
    /// Only requests in this namespace.
    #[serde(default)]
    pub namespace: Option<Located<String>>,
    /// Only requests for this object name.
    #[serde(default)]
    pub name: Option<Located<String>>,
    /// Answer with this HTTP status (default 500 unless `latency` or `loseResponse`).
    #[serde(default)]
    pub status: Option<Located<u16>>,
    /// The Status `reason` (default: the real server's for the code).
    #[serde(default)]
    pub reason: Option<String>,
    /// `Retry-After` sent with the answer: whole seconds (`20`) or a Go duration of whole
    /// seconds (`20s`, `1m`).
    #[serde(default)]
    pub retry_after: Option<Located<Text>>,
    /// Delay matching requests this long (virtual time), then serve them.
    #[serde(default)]
    pub latency: Option<Located<DurationText>>,
    /// Serve the request (the write happens), then lose the answer (a retry then meets 409).
    #[serde(default)]
    pub lose_response: bool,
    /// How many requests it applies to (default: until cleared).
    #[serde(default)]
    pub times: Option<u32>,
}

/// One expected event; every field given must match.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventMatcher {
    /// Normal or Warning.
    #[serde(default, rename = "type")]
    pub event_type: Option<String>,
    /// The reason, e.g. MigrationStarted.
    #[serde(default)]
    pub reason: Option<String>,
    /// The exact message.
    #[serde(default)]
    pub message: Option<String>,
    /// A text the message contains.
    #[serde(default)]
    pub message_contains: Option<String>,
    /// The claim the event is on (`namespace/name`).
    #[serde(default)]
    pub claim: Option<String>,
    /// The Event's count after this write (repeats fold into one Event).
    #[serde(default)]
    pub count: Option<i32>,
}

/// `expectMetric: {name, labels?, value}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricExpectation {
    /// The metric as exposed (`rds_csi_migration_migrations_total`; the `rds_csi_` prefix may
    /// be left out).
    pub name: Located<String>,
    /// Label values that select the series.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}
