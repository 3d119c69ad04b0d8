//! One reading of the driver's metrics, taken from the registry's typed state (the counters'
//! own accessors), never from Prometheus text written and parsed back.
//!
//! A series is named as Prometheus exposes it under the prefix `rds_csi` (counters with
//! `_total`, the histogram as `_sum` and `_count`, buckets left out); [`Readings::key`] is
//! the transcript's form of it (`rds_csi_events_posted_total{reason=VolumeAttached}`).
//!
//! ```
//! use csi_events::metrics::EventMetrics;
//! use csi_events::model::MigrationMetrics;
//! use csi_events::scenario::readings::Readings;
//! use csi_events::Reason;
//! use std::collections::BTreeMap;
//!
//! let events = EventMetrics::default();
//! events.count_posted(Reason::VolumeAttached);
//! let readings = Readings::of(&events, &MigrationMetrics::default());
//! let labels = BTreeMap::from([("reason".to_owned(), "VolumeAttached".to_owned())]);
//! assert_eq!(readings.value("events_posted", &labels), Some(1.0));
//! assert_eq!(readings.value("events_postd", &labels), None);
//! assert!(readings.non_zero().contains_key("rds_csi_events_posted_total{reason=VolumeAttached}"));
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::Reason;
use crate::metrics::{DropCause, EventMetrics, SkipCause};
use crate::model::{MigrationMetrics, MigrationResult};

/// The prefix the driver registers its metrics under.
pub const PREFIX: &str = "rds_csi";

/// Skip causes, in the order the transcript lists them.
pub const SKIP_CAUSES: [SkipCause; 4] = [
    SkipCause::PvNotFound,
    SkipCause::NoClaimRef,
    SkipCause::PvcNotFound,
    SkipCause::PvcUidMismatch,
];

/// Drop causes, in the order the transcript lists them.
pub const DROP_CAUSES: [DropCause; 5] = [
    DropCause::QueueFull,
    DropCause::RateLimited,
    DropCause::RetriesExhausted,
    DropCause::Rejected,
    DropCause::Shutdown,
];

/// The verbs of `event_writes_total`.
pub const WRITE_VERBS: [&str; 3] = ["get", "create", "patch"];

/// The results of `event_writes_total`.
pub const WRITE_RESULTS: [&str; 5] = ["ok", "not_found", "conflict", "retryable", "rejected"];

/// One series and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Full name (`rds_csi_events_posted_total`).
    pub name: String,
    /// Labels, in the order Prometheus prints them.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

/// Every series of one reading, in a fixed order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readings {
    series: Vec<Series>,
}

/// Counts of events not written, by (reason, cause), in the transcript's order.
pub type NotWritten = Vec<((String, String), u64)>;

impl Readings {
    /// Reads the poster's and the model's metrics.
    pub fn of(events: &EventMetrics, migrations: &MigrationMetrics) -> Self {
        let mut series = Vec::new();
        let mut push = |name: &str, labels: Vec<(&'static str, String)>, value: f64| {
            series.push(Series {
                name: format!("{PREFIX}_{name}"),
                labels,
                value,
            });
        };
        for reason in Reason::ALL {
            let r = reason.as_str().to_owned();
            push(
                "events_posted_total",
                vec![("reason", r.clone())],
                events.posted(*reason) as f64,
            );
            push(
                "events_deferred_total",
                vec![("reason", r.clone())],
                events.deferred(*reason) as f64,
            );
            for cause in SKIP_CAUSES {
                push(
                    "events_skipped_total",
                    vec![("reason", r.clone()), ("cause", cause.as_str().to_owned())],
                    events.skipped(*reason, cause) as f64,
                );
            }
            for cause in DROP_CAUSES {
                push(
                    "events_dropped_total",
                    vec![("reason", r.clone()), ("cause", cause.as_str().to_owned())],
                    events.dropped(*reason, cause) as f64,
                );
            }
        }
        for verb in WRITE_VERBS {
            for result in WRITE_RESULTS {
                push(
                    "event_writes_total",
                    vec![("verb", verb.to_owned()), ("result", result.to_owned())],
                    events.writes(verb, result) as f64,
                );
            }
        }
        for result in MigrationResult::ALL {
            push(
                "migration_migrations_total",
                vec![("result", result.as_str().to_owned())],
                migrations.migrations(result) as f64,
            );
        }
        push(
            "migration_duration_seconds_sum",
            Vec::new(),
            migrations.duration_sum(),
        );
        push(
            "migration_duration_seconds_count",
            Vec::new(),
            migrations.duration_count() as f64,
        );
        push(
            "migration_active_migrations",
            Vec::new(),
            migrations.active_migrations() as f64,
        );
        push(
            "attachment_conflicts_total",
            Vec::new(),
            migrations.conflicts() as f64,
        );
        push(
            "attachment_stale_cleared_total",
            Vec::new(),
            migrations.stale_cleared() as f64,
        );
        Self { series }
    }

    /// Every series.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// The transcript's name of a series: `name{a=b,c=d}`.
    pub fn key(series: &Series) -> String {
        if series.labels.is_empty() {
            return series.name.clone();
        }
        let labels: Vec<String> = series
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{}{{{}}}", series.name, labels.join(","))
    }

    /// The non-zero series by [`Readings::key`], sorted.
    pub fn non_zero(&self) -> BTreeMap<String, serde_json::Number> {
        self.series
            .iter()
            .filter(|s| s.value != 0.0)
            .map(|s| (Self::key(s), number(s.value)))
            .collect()
    }

    /// The metric names a scenario may name: with the prefix, and without the `_total` suffix
    /// of a counter.
    pub fn names(&self) -> BTreeSet<String> {
        self.series.iter().map(|s| s.name.clone()).collect()
    }

    /// The sum of the series of metric `name` (with or without the `rds_csi_` prefix and the
    /// `_total` suffix) whose labels include `labels`; None when no series has that name.
    pub fn value(&self, name: &str, labels: &BTreeMap<String, String>) -> Option<f64> {
        let base = name
            .strip_prefix(PREFIX)
            .and_then(|n| n.strip_prefix('_'))
            .unwrap_or(name);
        let wanted = [format!("{PREFIX}_{base}"), format!("{PREFIX}_{base}_total")];
        let mut found = false;
        let mut sum = 0.0;
        for series in self.series.iter().filter(|s| wanted.contains(&s.name)) {
            found = true;
            let matches = labels.iter().all(|(k, v)| {
                series
                    .labels
                    .iter()
                    .any(|(sk, sv)| *sk == k.as_str() && sv == v)
            });
            if matches {
                sum += series.value;
            }
        }
        found.then_some(sum)
    }

    /// Every skip and drop counter as ((reason, cause), count): reasons in `Reason::ALL`
    /// order, for each its skip causes, then its drop causes.
    pub fn not_written(&self) -> NotWritten {
        self.series
            .iter()
            .filter(|s| {
                s.name.ends_with("_events_skipped_total")
                    || s.name.ends_with("_events_dropped_total")
            })
            .filter_map(|s| {
                let label = |key: &str| {
                    s.labels
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map(|(_, v)| v.clone())
                };
                Some(((label("reason")?, label("cause")?), s.value.max(0.0) as u64))
            })
            .collect()
    }
}

/// A metric value as a number: integral values without a fraction.
pub fn number(value: f64) -> serde_json::Number {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        serde_json::Number::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).unwrap_or_else(|| serde_json::Number::from(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_by_name_with_or_without_prefix_and_total() {
        let events = EventMetrics::default();
        events.count_posted(Reason::VolumeAttached);
        events.count_posted(Reason::VolumeAttached);
        events.count_write("create", "ok");
        let readings = Readings::of(&events, &MigrationMetrics::default());
        let labels = BTreeMap::from([("reason".to_owned(), "VolumeAttached".to_owned())]);
        assert_eq!(readings.value("events_posted", &labels), Some(2.0));
        assert_eq!(
            readings.value("rds_csi_events_posted_total", &BTreeMap::new()),
            Some(2.0)
        );
        let other = BTreeMap::from([("reason".to_owned(), "VolumeDetached".to_owned())]);
        assert_eq!(readings.value("events_posted", &other), Some(0.0));
        assert_eq!(
            readings.value("migration_duration_seconds_sum", &BTreeMap::new()),
            Some(0.0)
        );
        assert_eq!(readings.value("nothing_like_it", &BTreeMap::new()), None);
        let keys = readings.non_zero();
        assert_eq!(
            keys.keys().cloned().collect::<Vec<_>>(),
            [
                "rds_csi_event_writes_total{verb=create,result=ok}",
                "rds_csi_events_posted_total{reason=VolumeAttached}"
            ]
        );
    }

    #[test]
    fn not_written_lists_skip_then_drop_causes_per_reason() {
        let events = EventMetrics::default();
        events.count_dropped(Reason::VolumeAttached, DropCause::Shutdown, 2);
        let readings = Readings::of(&events, &MigrationMetrics::default());
        let counts = readings.not_written();
        assert_eq!(counts.len(), Reason::ALL.len() * 9);
        assert_eq!(
            counts[0].0,
            (
                Reason::ALL[0].as_str().to_owned(),
                "pv_not_found".to_owned()
            )
        );
        assert!(counts.contains(&(("VolumeAttached".to_owned(), "shutdown".to_owned()), 2)));
    }
}
