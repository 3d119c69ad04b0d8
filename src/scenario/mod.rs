//! Scenarios: QA's YAML files played against the in-process fake cluster on a virtual clock,
//! with every event, skip, drop and metric recorded in a transcript that insta snapshots hold.
//!
//! Modules, in the order a file travels:
//! - [`format`](mod@format): the file's YAML shape (serde, schemars), with positions;
//! - [`load`]: discovery, strict parsing and checking; [`diagnostics`]: how problems show;
//! - [`plan`]: the checked scenario the runner plays;
//! - [`schema`]: the JSON Schema for editors;
//! - [`runner`]: plays a scenario (embedded fake cluster or a kubeconfig) into a transcript,
//!   with [`many`] running several at once; a run's parts: `world` (the cluster objects it
//!   seeds), [`driver`] (the seam to the CSI driver: publish, unpublish, nodes, restart, ...),
//!   `steps` (one step), `attacher` (the VolumeAttachments), `feed` (the Events
//!   written), `expect` (expectations), [`readings`] (metrics), [`seeded`] (the seeded
//!   generator), [`wire`] (the same model reached through the CSI gRPC services),
//!   [`blackbox`] (a driver in another process, driven as Kubernetes drives it); what a run
//!   gives: [`outcome`] (its result) or [`run_error`] (why it could not run);
//! - [`transcript`]: what a run recorded, as the snapshot and JSON show it;
//! - [`snapshot`]: insta `.snap` files: compare, write pending `.snap.new`, accept;
//!   [`conformance`]: a black-box transcript held to a snapshot, real-time durations allowed;
//! - [`timeline`]: a run in time (nodes, attachment spans, migration windows, faults,
//!   restarts, problems), beside the transcript in the JSON;
//! - [`report`]: human, JSON and JUnit output of a run; [`html`]: the visual report.

pub mod diagnostics;
pub mod format;
pub mod load;
pub mod plan;
pub mod schema;

pub use diagnostics::{FileProblems, Problem};
pub use plan::Scenario;
pub(crate) mod attacher;
pub mod blackbox;
pub mod conformance;
pub mod driver;
pub(crate) mod expect;
pub(crate) mod feed;
pub mod isolate;
pub mod many;
pub mod outcome;
pub mod readings;
pub mod run_error;
pub mod runner;
pub mod seeded;
pub(crate) mod steps;
pub mod transcript;
pub mod wire;
pub(crate) mod world;

pub use runner::{BlackBoxTarget, RunError, RunResult, Target};
pub use transcript::Transcript;
pub mod html;
pub mod report;
pub mod snapshot;
pub mod suite;
pub mod timeline;
