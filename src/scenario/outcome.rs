//! What a run gives: its [`RunResult`] (transcript, timeline, failed expectations), in the
//! scenario's own names.

use std::time::Duration;

use super::isolate::Isolation;
use super::timeline::Timeline;
use super::transcript::Transcript;

/// What one run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The scenario's name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// The transcript.
    pub transcript: Transcript,
    /// The run in time (nodes, attachments, migrations, faults, restarts, problems): the
    /// visual report's data beside the transcript.
    pub timeline: Timeline,
    /// Failed expectations and unexpected step failures (empty: the expectations held).
    pub failures: Vec<String>,
    /// Wall time the run took (runtime, cluster and all steps).
    pub wall: Duration,
    /// With `--kubeconfig --keep`: the suffix the kept objects' names carry (namespaces,
    /// nodes, PVs), e.g. `-r4k2x9q` (docs/scenarios.md §5).
    pub kept: Option<String>,
}

impl RunResult {
    /// The record of a run made under `isolation`'s names, in the scenario's names (events,
    /// outcomes, failures).
    pub(crate) fn restored(mut self, isolation: &Isolation) -> Self {
        self.transcript = isolation.restore_transcript(self.transcript);
        self.failures = self.failures.iter().map(|f| isolation.restore(f)).collect();
        self
    }
}
