//! The lifecycle metrics of lifecycle.md "Metrics", through `prometheus-client`.
//!
//! Registered under the sub-registries `migration` and `attachment`, so with the prefix
//! `rds_csi` the series are `rds_csi_migration_migrations_total{result}`,
//! `rds_csi_migration_duration_seconds` (histogram), `rds_csi_migration_active_migrations`
//! (gauge), `rds_csi_attachment_conflicts_total` and `rds_csi_attachment_stale_cleared_total`.
//! No label ever names a volume, node or claim.
//!
//! ```
//! use csi_events::model::{MigrationMetrics, MigrationResult};
//! use prometheus_client::registry::Registry;
//!
//! let metrics = MigrationMetrics::default();
//! let mut registry = Registry::with_prefix("rds_csi");
//! metrics.register(&mut registry);
//! let text = csi_events::metrics::encode_text(&registry);
//! assert!(text.contains("rds_csi_migration_active_migrations 0"));
//! assert_eq!(metrics.migrations(MigrationResult::Timeout), 0);
//! ```

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The buckets of `migration_duration_seconds`, in seconds.
pub const DURATION_BUCKETS: [f64; 8] = [15.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0];

/// How a migration ended: the `result` label of `migration_migrations_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MigrationResult {
    /// The source detached: MigrationCompleted (`success`).
    Success,
    /// The timer fired (`timeout`).
    Timeout,
    /// The target detached before the source (`aborted`).
    Aborted,
    /// One of the two nodes was deleted (`node_deleted`).
    NodeDeleted,
}

impl MigrationResult {
    /// Every result.
    pub const ALL: [MigrationResult; 4] = [
        MigrationResult::Success,
        MigrationResult::Timeout,
        MigrationResult::Aborted,
        MigrationResult::NodeDeleted,
    ];

    /// The label value: `success`, `timeout`, `aborted`, `node_deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationResult::Success => "success",
            MigrationResult::Timeout => "timeout",
            MigrationResult::Aborted => "aborted",
            MigrationResult::NodeDeleted => "node_deleted",
        }
    }
}

impl fmt::Display for MigrationResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The lifecycle metrics. Clones share the same series.
#[derive(Debug, Clone)]
pub struct MigrationMetrics {
    migrations: Family<ResultLabels, Counter>,
    duration: Histogram,
    // The histogram's sum and count again, readable (the histogram's own are test-only).
    duration_sum: Counter<f64, AtomicU64>,
    duration_count: Counter,
    active: Gauge,
    conflicts: Counter,
    stale_cleared: Counter,
}

impl Default for MigrationMetrics {
    fn default() -> Self {
        Self {
            migrations: Family::default(),
            duration: Histogram::new(DURATION_BUCKETS),
            duration_sum: Counter::default(),
            duration_count: Counter::default(),
            active: Gauge::default(),
            conflicts: Counter::default(),
            stale_cleared: Counter::default(),
        }
    }
}

impl MigrationMetrics {
    /// Registers the series; the registry's prefix (e.g. `rds_csi`) is prepended, then
    /// `migration_` or `attachment_`.
    pub fn register(&self, registry: &mut Registry) {
        let migration = registry.sub_registry_with_prefix("migration");
        migration.register(
            "migrations",
            "Live migrations that ended, by result (success, timeout, aborted, node_deleted)",
            self.migrations.clone(),
        );
        migration.register(
            "duration_seconds",
            "How long live migrations ran until they ended, whatever the result",
            self.duration.clone(),
        );
        migration.register(
            "active_migrations",
            "Live migrations running now",
            self.active.clone(),
        );
        let attachment = registry.sub_registry_with_prefix("attachment");
        attachment.register(
            "conflicts",
            "Publishes refused because an RWO volume is attached to another live node",
            self.conflicts.clone(),
        );
        attachment.register(
            "stale_cleared",
            "Attachments cleared because their node was deleted",
            self.stale_cleared.clone(),
        );
    }

    /// `migration_migrations_total{result}`.
    pub fn migrations(&self, result: MigrationResult) -> u64 {
        self.migrations
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .get()
    }

    /// `migration_duration_seconds_sum`: the seconds every ended migration ran, summed.
    pub fn duration_sum(&self) -> f64 {
        self.duration_sum.get()
    }

    /// `migration_duration_seconds_count`: how many migrations ended.
    pub fn duration_count(&self) -> u64 {
        self.duration_count.get()
    }

    /// `migration_active_migrations`.
    pub fn active_migrations(&self) -> i64 {
        self.active.get()
    }

    /// `attachment_conflicts_total`.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.get()
    }

    /// `attachment_stale_cleared_total`.
    pub fn stale_cleared(&self) -> u64 {
        self.stale_cleared.get()
    }

    /// Counts an ended migration and observes how long it ran.
    pub(crate) fn migration_ended(&self, result: MigrationResult, ran: Duration) {
        self.migrations
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .inc();
        self.duration.observe(ran.as_secs_f64());
        self.duration_sum.inc_by(ran.as_secs_f64());
        self.duration_count.inc();
    }

    /// Sets the gauge to the number of running migrations (never below zero).
    pub(crate) fn set_active(&self, running: usize) {
        self.active.set(i64::try_from(running).unwrap_or(i64::MAX));
    }

    pub(crate) fn count_conflict(&self) {
        self.conflicts.inc();
    }

    pub(crate) fn count_stale_cleared(&self) {
        self.stale_cleared.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_the_prefix_and_buckets() {
        let metrics = MigrationMetrics::default();
        let mut registry = Registry::with_prefix("rds_csi");
        metrics.register(&mut registry);
        metrics.migration_ended(MigrationResult::NodeDeleted, Duration::from_secs(45));
        metrics.count_conflict();
        metrics.count_stale_cleared();
        metrics.set_active(2);
        let text = crate::metrics::encode_text(&registry);
        for line in [
            r#"rds_csi_migration_migrations_total{result="node_deleted"} 1"#,
            "rds_csi_migration_duration_seconds_sum 45.0",
            "rds_csi_migration_duration_seconds_count 1",
            r#"rds_csi_migration_duration_seconds_bucket{le="15.0"} 0"#,
            r#"rds_csi_migration_duration_seconds_bucket{le="60.0"} 1"#,
            r#"rds_csi_migration_duration_seconds_bucket{le="600.0"} 1"#,
            "rds_csi_migration_active_migrations 2",
            "rds_csi_attachment_conflicts_total 1",
            "rds_csi_attachment_stale_cleared_total 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        let buckets = text
            .matches("rds_csi_migration_duration_seconds_bucket")
            .count();
        assert_eq!(buckets, DURATION_BUCKETS.len() + 1, "8 buckets and +Inf");
    }
}
