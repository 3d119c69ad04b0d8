//! The event core's Prometheus metrics (`docs/events.md` §6), through `prometheus-client`.
//!
//! Labels are reasons, causes, verbs and results only: never a volume, node or claim name, so
//! the series count does not grow with the cluster.
//!
//! ```
//! use csi_events::metrics::{DropCause, EventMetrics};
//! use csi_events::Reason;
//! use prometheus_client::registry::Registry;
//!
//! let metrics = EventMetrics::default();
//! let mut registry = Registry::with_prefix("rds_csi");
//! metrics.register(&mut registry);
//! metrics.count_dropped(Reason::VolumeAttached, DropCause::QueueFull, 1);
//! assert_eq!(metrics.dropped(Reason::VolumeAttached, DropCause::QueueFull), 1);
//! let text = csi_events::metrics::encode_text(&registry);
//! assert!(text.contains(r#"rds_csi_events_dropped_total{reason="VolumeAttached",cause="queue_full"} 1"#));
//! ```

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::reason::Reason;

/// Why an event was not written because its claim could not be found (`docs/events.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipCause {
    /// The PersistentVolume named by the volume id does not exist.
    PvNotFound,
    /// The PersistentVolume has no `spec.claimRef`.
    NoClaimRef,
    /// The claim does not exist.
    PvcNotFound,
    /// The claim was re-created: its uid differs from the PV's claimRef.
    PvcUidMismatch,
}

impl SkipCause {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipCause::PvNotFound => "pv_not_found",
            SkipCause::NoClaimRef => "no_claim_ref",
            SkipCause::PvcNotFound => "pvc_not_found",
            SkipCause::PvcUidMismatch => "pvc_uid_mismatch",
        }
    }
}

/// Why an event was given up (`docs/events.md` §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropCause {
    /// The queue was full when it was posted.
    QueueFull,
    /// It waited for a spam-filter token and its waiting series was evicted from the series
    /// cache (more claims waiting at once than the cache holds).
    RateLimited,
    /// Every attempt failed with a retryable error.
    RetriesExhausted,
    /// The API server refused it (403, 400, 422).
    Rejected,
    /// The poster shut down before it could be written.
    Shutdown,
}

impl DropCause {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropCause::QueueFull => "queue_full",
            DropCause::RateLimited => "rate_limited",
            DropCause::RetriesExhausted => "retries_exhausted",
            DropCause::Rejected => "rejected",
            DropCause::Shutdown => "shutdown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonCauseLabels {
    reason: &'static str,
    cause: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WriteLabels {
    verb: &'static str,
    result: &'static str,
}

/// The counters of the event core. Clones share the same series.
#[derive(Debug, Clone, Default)]
pub struct EventMetrics {
    posted: Family<ReasonLabels, Counter>,
    skipped: Family<ReasonCauseLabels, Counter>,
    dropped: Family<ReasonCauseLabels, Counter>,
    deferred: Family<ReasonLabels, Counter>,
    writes: Family<WriteLabels, Counter>,
    /// Every skip and drop counted, over all reasons and causes: a reader of the skip and
    /// drop counters learns from it, at the cost of one load, whether any of them moved.
    not_written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl EventMetrics {
    /// Registers the counters; the registry's prefix (e.g. `rds_csi`) is prepended.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "events_posted",
            "Events accepted by post_*, by reason",
            self.posted.clone(),
        );
        registry.register(
            "events_skipped",
            "Events not written because their claim could not be found",
            self.skipped.clone(),
        );
        registry.register(
            "events_dropped",
            "Events given up: queue full, rate limited, retries exhausted, rejected, shutdown",
            self.dropped.clone(),
        );
        registry.register(
            "events_deferred",
            "Events that waited for a spam-filter token before being written (none is lost)",
            self.deferred.clone(),
        );
        registry.register(
            "event_writes",
            "Requests the event core made to the API server, by verb and result",
            self.writes.clone(),
        );
    }

    /// Counts an accepted post.
    pub fn count_posted(&self, reason: Reason) {
        self.posted
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Counts `n` skipped events.
    pub fn count_skipped(&self, reason: Reason, cause: SkipCause, n: u64) {
        self.skipped
            .get_or_create(&ReasonCauseLabels {
                reason: reason.as_str(),
                cause: cause.as_str(),
            })
            .inc_by(n);
        self.not_written
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts `n` dropped events.
    pub fn count_dropped(&self, reason: Reason, cause: DropCause, n: u64) {
        self.dropped
            .get_or_create(&ReasonCauseLabels {
                reason: reason.as_str(),
                cause: cause.as_str(),
            })
            .inc_by(n);
        self.not_written
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts `n` posts that have to wait for a spam-filter token.
    pub fn count_deferred(&self, reason: Reason, n: u64) {
        self.deferred
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc_by(n);
    }

    /// Counts one API request: `verb` (get, create, patch) and `result` (ok or an error class).
    pub fn count_write(&self, verb: &'static str, result: &'static str) {
        self.writes
            .get_or_create(&WriteLabels { verb, result })
            .inc();
    }

    /// `events_posted_total{reason}`.
    pub fn posted(&self, reason: Reason) -> u64 {
        self.posted
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .get()
    }

    /// Every skip and drop counted so far (the sum of `events_skipped_total` and
    /// `events_dropped_total` over all their series): unchanged means none of them moved.
    ///
    /// ```
    /// use csi_events::metrics::{EventMetrics, SkipCause};
    /// use csi_events::Reason;
    /// let metrics = EventMetrics::default();
    /// metrics.count_skipped(Reason::VolumeAttached, SkipCause::PvNotFound, 2);
    /// assert_eq!(metrics.not_written_total(), 2);
    /// ```
    pub fn not_written_total(&self) -> u64 {
        self.not_written.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `events_skipped_total{reason,cause}`.
    pub fn skipped(&self, reason: Reason, cause: SkipCause) -> u64 {
        self.skipped
            .get_or_create(&ReasonCauseLabels {
                reason: reason.as_str(),
                cause: cause.as_str(),
            })
            .get()
    }

    /// `events_dropped_total{reason,cause}`.
    pub fn dropped(&self, reason: Reason, cause: DropCause) -> u64 {
        self.dropped
            .get_or_create(&ReasonCauseLabels {
                reason: reason.as_str(),
                cause: cause.as_str(),
            })
            .get()
    }

    /// `events_dropped_total{cause}` summed over every reason.
    pub fn dropped_total(&self, cause: DropCause) -> u64 {
        Reason::ALL.iter().map(|r| self.dropped(*r, cause)).sum()
    }

    /// `events_deferred_total{reason}`.
    pub fn deferred(&self, reason: Reason) -> u64 {
        self.deferred
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .get()
    }

    /// `event_writes_total{verb,result}`.
    pub fn writes(&self, verb: &'static str, result: &'static str) -> u64 {
        self.writes
            .get_or_create(&WriteLabels { verb, result })
            .get()
    }
}

/// The registry in the Prometheus text format.
pub fn encode_text(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail; an encoding error would only come from the writer.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}
