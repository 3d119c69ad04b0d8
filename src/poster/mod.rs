//! The event poster: `post_*` calls that return at once, and the worker that delivers them.
//!
//! A CSI driver holds one [`EventPoster`] (cheap to clone) and calls a `post_*` method where
//! something happens to a volume. The call builds the exact message, counts it, and hands it to
//! a background worker; it never waits for the API server. The worker finds the claim (a GET,
//! or a reflector: [`ClaimSource`]), folds repeats into one Event (`count`), writes core/v1
//! Events within the spam filter's budget of writes per claim (posts over it wait and are
//! written whole when a token comes; none is dropped for it), and retries or gives up as
//! `docs/events.md` §5 says.
//!
//! ```
//! use csi_events::{ClaimName, EventPoster, PosterConfig};
//! use fake_apiserver::{ApiServer, SystemClock};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let client = fake_apiserver::transport::in_process_client(ApiServer::new(Arc::new(SystemClock)));
//! let poster = EventPoster::new(client, PosterConfig::default());
//! let claim = ClaimName::new("vms", "disk");
//! poster.post_migration_started(Some(&claim), &"pvc-1".into(), &"node-a".into(), &"node-b".into(), Duration::from_secs(300));
//! poster.flush().await; // the claim does not exist here: the event is skipped and counted
//! # }
//! ```

mod api;
mod backoff;
mod claims;
mod ledger;
mod spam;
mod worker;
mod write;

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared as SharedFuture};
use tokio::sync::{mpsc, oneshot};

pub use backoff::RetryPolicy;
pub use claims::ClaimSource;
pub use write::WRITER_ANNOTATION;

use self::api::ApiCaller;
use self::claims::{ClaimIndex, Subject};
use self::worker::{Links, Message, Posted, Settings, Worker};
use crate::clock::{SharedClock, SystemClock};
use crate::event::{LifecycleEvent, MigrationFailure};
use crate::ids::{ClaimName, NodeName, VolumeId};
use crate::metrics::{DropCause, EventMetrics};
use crate::reason::Reason;

/// How the poster is set up. Every field has the default of `docs/events.md`.
///
/// ```
/// use csi_events::PosterConfig;
/// let config = PosterConfig::default().component("rds-csi-node").queue_size(50);
/// assert_eq!(config.component, "rds-csi-node");
/// assert_eq!(config.spam_burst, 25);
/// ```
#[derive(Clone)]
pub struct PosterConfig {
    /// `source.component` and `reportingComponent` (default `rds-csi-controller`).
    pub component: String,
    /// `reportingInstance` (default: the host name).
    pub instance: String,
    /// Events held at most, queued or being written (default 1000).
    pub queue_size: usize,
    /// Entries of each cache: folding and spam filter (default 4096).
    pub cache_size: NonZeroUsize,
    /// Spam filter: writes (creates and patches) per claim in a burst (default 25). Posts over
    /// it wait for a token; none is dropped for it. 0 is taken as 1 (a claim whose bucket
    /// never held a token would never be written).
    pub spam_burst: u32,
    /// Spam filter: one token back every this long (default 300 s).
    pub spam_refill: Duration,
    /// Where claim uids come from (default: a GET per burst; see [`ClaimSource`]).
    pub claim_source: ClaimSource,
    /// Retry timing and attempts.
    pub retry: RetryPolicy,
    /// A request without an answer after this long is a retryable failure (default 30 s).
    pub request_timeout: Duration,
    /// Requests in flight at once (default 8).
    pub max_in_flight: usize,
    /// The clock stamping events and timing retries (default: real time).
    pub clock: SharedClock,
    /// Where the counters go (register them in your registry).
    pub metrics: EventMetrics,
}

impl Default for PosterConfig {
    fn default() -> Self {
        Self {
            component: "rds-csi-controller".to_owned(),
            instance: host_name(),
            queue_size: 1000,
            // 4096 is not zero.
            cache_size: NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
            spam_burst: 25,
            spam_refill: Duration::from_secs(300),
            claim_source: ClaimSource::Get,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            max_in_flight: 8,
            clock: Arc::new(SystemClock),
            metrics: EventMetrics::default(),
        }
    }
}

impl PosterConfig {
    /// Sets the component.
    pub fn component(mut self, component: impl Into<String>) -> Self {
        self.component = component.into();
        self
    }

    /// Sets the instance.
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = instance.into();
        self
    }

    /// Sets the queue size.
    pub fn queue_size(mut self, size: usize) -> Self {
        self.queue_size = size;
        self
    }

    /// Sets the clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the metrics handle.
    pub fn metrics(mut self, metrics: EventMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Sets where claim uids come from.
    pub fn claim_source(mut self, source: ClaimSource) -> Self {
        self.claim_source = source;
        self
    }

    /// Sets the spam filter: `burst` writes per claim, one more every `refill`.
    pub fn spam_filter(mut self, burst: u32, refill: Duration) -> Self {
        self.spam_burst = burst;
        self.spam_refill = refill;
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// A poster's tag: different for every poster (another instance, a restart, another poster in
/// the same process), deterministic for a given configuration, clock reading and creation order.
fn poster_tag(config: &PosterConfig) -> u64 {
    static CREATED: AtomicU64 = AtomicU64::new(0);
    let mut mix = backoff::SplitMix64::new(config.retry.seed);
    let mut tag = mix.next_u64();
    for byte in config.instance.bytes().chain(config.component.bytes()) {
        tag = (tag ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let now = config.clock.now().as_nanosecond() as u64;
    let order = CREATED.fetch_add(1, Ordering::Relaxed);
    let mut mix = backoff::SplitMix64::new(tag ^ now ^ order.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    mix.next_u64()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .filter(|name| !name.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// An event the poster could not write before its shutdown deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    /// Its reason.
    pub reason: Reason,
    /// The claim (or, if it was never found, the claim or volume named by the caller).
    pub claim: String,
    /// Its message.
    pub message: String,
    /// How many posts of it were not written.
    pub count: usize,
}

/// What [`EventPoster::shutdown`] could not write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Events given up at the deadline (also counted as dropped, cause `shutdown`).
    pub abandoned: Vec<Abandoned>,
}

impl ShutdownReport {
    /// Whether every event was written, skipped or dropped for its own cause before the deadline.
    pub fn is_clean(&self) -> bool {
        self.abandoned.is_empty()
    }
}

/// Posts lifecycle events on claims without ever blocking the caller.
///
/// Clones share one worker. Create it inside a tokio runtime (the worker is a task).
#[derive(Clone)]
pub struct EventPoster {
    shared: Arc<Shared>,
}

struct Shared {
    tx: mpsc::UnboundedSender<Message>,
    admitted: Arc<AtomicUsize>,
    folded: Arc<AtomicUsize>,
    capacity: usize,
    closed: AtomicBool,
    clock: SharedClock,
    metrics: EventMetrics,
    drop_warnings: WarnLimiter,
    /// Completes when the worker has stopped; every `shutdown` call waits on it.
    worker: SharedFuture<BoxFuture<'static, ()>>,
    /// The worker's report, left there when it stops.
    report: Arc<Mutex<Option<ShutdownReport>>>,
    claims: Arc<ClaimIndex>,
}

/// Warnings about dropped posts are logged at most once per this interval.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Lets one warning through per [`WARN_INTERVAL`] and counts the ones it holds back.
struct WarnLimiter {
    next_allowed_nanos: AtomicI64,
    suppressed: AtomicU64,
}

impl WarnLimiter {
    /// A limiter that lets the next warning through.
    fn new() -> Self {
        Self {
            next_allowed_nanos: AtomicI64::new(i64::MIN),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(held back since the last warning)` when a warning may be logged now.
    fn allow(&self, now: jiff::Timestamp) -> Option<u64> {
        let now_nanos = i64::try_from(now.as_nanosecond()).unwrap_or(i64::MAX);
        let next = now_nanos.saturating_add(WARN_INTERVAL.as_nanos() as i64);
        let allowed = self
            .next_allowed_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |at| {
                (now_nanos >= at).then_some(next)
            })
            .is_ok();
        if allowed {
            Some(self.suppressed.swap(0, Ordering::AcqRel))
        } else {
            self.suppressed.fetch_add(1, Ordering::AcqRel);
            None
        }
    }
}

impl EventPoster {
    /// A poster writing through `client`; spawns its worker on the current tokio runtime.
    pub fn new(client: kube::Client, config: PosterConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let admitted = Arc::new(AtomicUsize::new(0));
        let folded = Arc::new(AtomicUsize::new(0));
        let report = Arc::new(Mutex::new(None));
        let tag = poster_tag(&config);
        let claims = Arc::new(ClaimIndex::start(config.claim_source, &client));
        let api = ApiCaller {
            client,
            clock: config.clock.clone(),
            timeout: config.request_timeout,
            metrics: config.metrics.clone(),
        };
        let settings = Settings {
            writer: Arc::new(write::Writer::new(config.component, config.instance, tag)),
            tag,
            cache_size: config.cache_size,
            spam_burst: config.spam_burst.max(1),
            spam_refill: config.spam_refill,
            retry: config.retry,
            max_in_flight: config.max_in_flight,
        };
        let links = Links {
            admitted: admitted.clone(),
            folded: folded.clone(),
            report: report.clone(),
        };
        let worker = Worker::new(api, claims.clone(), settings, links, rx);
        let handle = tokio::spawn(worker.run());
        // A worker that panicked has stopped too: every waiter is released either way.
        let stopped = handle.map(|_| ()).boxed().shared();
        Self {
            shared: Arc::new(Shared {
                tx,
                admitted,
                folded,
                capacity: config.queue_size,
                closed: AtomicBool::new(false),
                clock: config.clock,
                metrics: config.metrics,
                drop_warnings: WarnLimiter::new(),
                worker: stopped,
                report,
                claims,
            }),
        }
    }

    /// The counters this poster updates.
    pub fn metrics(&self) -> &EventMetrics {
        &self.shared.metrics
    }

    /// Posts `event` on `claim`, or on the claim bound to the event's volume when `claim` is
    /// `None`. Returns at once; the orphan reasons are logged and counted only.
    pub fn post(&self, claim: Option<&ClaimName>, event: LifecycleEvent) {
        let reason = event.reason();
        self.shared.metrics.count_posted(reason);
        let message = event.message();
        let (Some(event_type), Some(volume)) = (reason.event_type(), event.volume()) else {
            tracing::info!("{message}");
            return;
        };
        if self.shared.closed.load(Ordering::Acquire) {
            self.drop_at_the_door(reason, DropCause::Shutdown);
            return;
        }
        if !self.admit() {
            self.drop_at_the_door(reason, DropCause::QueueFull);
            return;
        }
        let subject = match claim {
            Some(claim) => Subject::Claim(claim.clone()),
            None => Subject::Volume(volume.clone()),
        };
        let posted = Posted {
            subject,
            reason,
            event_type,
            message,
            at: self.shared.clock.now(),
        };
        if self.shared.tx.send(Message::Post(posted)).is_err() {
            self.shared.admitted.fetch_sub(1, Ordering::AcqRel);
            self.shared
                .metrics
                .count_dropped(reason, DropCause::Shutdown, 1);
        }
    }

    /// Counts a post refused before it reached the queue; warns at most once per
    /// [`WARN_INTERVAL`] of the poster's clock, saying how many were dropped meanwhile.
    fn drop_at_the_door(&self, reason: Reason, cause: DropCause) {
        self.shared.metrics.count_dropped(reason, cause, 1);
        if let Some(suppressed) = self.shared.drop_warnings.allow(self.shared.clock.now()) {
            tracing::warn!(
                %reason,
                cause = cause.as_str(),
                capacity = self.shared.capacity,
                dropped_since_last_warning = suppressed,
                "event dropped before it was queued"
            );
        }
    }

    /// Takes a queue slot if one is free.
    fn admit(&self) -> bool {
        self.shared
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.shared.capacity).then_some(held + 1)
            })
            .is_ok()
    }

    /// Waits until every event posted before this call is written, skipped or dropped, or is
    /// waiting out a retry delay or for a spam-filter token (which only the clock moving ends).
    pub async fn flush(&self) {
        let (reply, done) = oneshot::channel();
        if self.shared.tx.send(Message::Flush(reply)).is_ok() {
            let _ = done.await;
        }
    }

    /// Stops accepting events and lets the worker write what it holds for at most `grace` on
    /// the poster's clock; reports what it had to abandon.
    ///
    /// Every call (concurrent or later, from any clone) returns the same report once the
    /// worker has stopped; the earliest deadline asked for ends it.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        self.shared.closed.store(true, Ordering::Release);
        // When the worker has stopped already the send fails; its report is there anyway.
        let _ = self.shared.tx.send(Message::Shutdown { grace });
        self.shared.worker.clone().await;
        self.shared
            .report
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .unwrap_or_default()
    }

    /// Waits until the claim source is ready: at once for [`ClaimSource::Get`]; for
    /// [`ClaimSource::Reflector`], until it has listed the claims. Posting before that is fine
    /// (a claim not in the reflector yet is read with a GET); this only saves those GETs.
    /// While the list is refused (no `list`/`watch` on claims) it does not return: bound it
    /// with a timeout.
    pub async fn claims_ready(&self) {
        self.shared.claims.ready().await;
    }

    /// Events holding a queue slot: accepted and not yet finished (written, skipped or
    /// dropped). A post folded into a series that waits for a spam-filter token gives its slot
    /// back and is counted by [`waiting`](Self::waiting) instead.
    pub fn queued(&self) -> usize {
        self.shared.admitted.load(Ordering::Acquire)
    }

    /// Posts that waited for a spam-filter token and are not written yet. They hold no queue
    /// slot (each waiting series is one entry of the series cache with a count), so a claim
    /// over its write budget never crowds out the others. Zero when nothing waits.
    ///
    /// Everything posted is finished when `queued() + waiting() == 0`.
    pub fn waiting(&self) -> usize {
        self.shared.folded.load(Ordering::Acquire)
    }

    /// MountFailure (Warning): `[{vol}] on [{node}]: {message}`.
    pub fn post_mount_failure(
        &self,
        claim: Option<&ClaimName>,
        volume: &VolumeId,
        node: &NodeName,
        message: &str,
    ) {
        self.post(
            claim,
            LifecycleEvent::MountFailure {
                volume: volume.clone(),
                node: node.clone(),
                message: message.to_owned(),
            },
        );
    }

    /// RecoveryFailed (Warning).
    pub fn post_recovery_failed(
        &self,
        claim: Option<&ClaimName>,
        volume: &VolumeId,
        node: &NodeName,
        attempts: u32,
        error: &str,
    ) {
        self.post(
            claim,
            LifecycleEvent::RecoveryFailed {
                volume: volume.clone(),
                node: node.clone(),
                attempts,
                error: error.to_owned(),
            },
        );
    }

    /// StaleMountDetected (Normal).
    pub fn post_stale_mount_detected(
        &self,
        claim: Option<&ClaimName>,
        volume: &VolumeId,
        node: &NodeName,
        old_device: &str,
        new_device: &str,
    ) {
        self.post(
            claim,
            LifecycleEvent::StaleMountDetected {
                volume: volume.clone(),
                node: node.clone(),
                old_device: old_device.to_owned(),
                new_device: new_device.to_owned(),
            },
        );
    }

    /// ConnectionFailure (Warning).
    pub fn post_connection_failure(
        &self,
        claim: Option<&ClaimName>,
        volume: &VolumeId,
        node: &NodeName,
        address: &str,
        error: &str,
    ) {
        self.post(
            claim,
            LifecycleEvent::ConnectionFailure {
                volume: volume.clone(),
                node: node.clone(),
                address: address.to_owned(),
                error: error.to_owned(),
            },
        );
    }

    /// ConnectionRecovery (Normal).
    pub fn post_connection_recovery(
        &self,
        claim: Option<&ClaimName>,
        volume: &VolumeId,
        node: &NodeName,
        address: &str,
        attempts: u32,
    ) {
        self.post(
            claim,
            LifecycleEvent::ConnectionRecovery {
                volume: volume.clone(),
                node: node.clone(),
                address: address.to_owned(),
                attempts,
            },
        );
    }

    /// AttachmentConflict (Warning): `requested` was refused because `holder` has the volume.
    pub fn post_attachment_conflict(
        &self,
        claim: Option<&ClaimName>,
        volume: &VolumeId,
        requested: &NodeName,
        holder: &NodeName,
    ) {
        self.post(
            claim,
            LifecycleEvent::AttachmentConflict {
                volume: volume.clone(),
                requested: requested.clone(),
                holder: holder.clone(),
            },
        );
    }

    /// VolumeAttached (Normal), `took` printed to the millisecond.
    pub fn post_volume_attached(
        &self,
        claim: Option<&ClaimName>,
        volume: &VolumeId,
        node: &NodeName,
        took: Duration,
    ) {
        self.post(
            claim,
            LifecycleEvent::VolumeAttached {
                volume: volume.clone(),
                node: node.clone(),
                took,
            },
        );
    }

    /// VolumeDetached (Normal).
    pub fn post_volume_detached(
        &self,
        claim: Option<&ClaimName>,
        volume: &VolumeId,
        node: &NodeName,
    ) {
        self.post(
            claim,
            LifecycleEvent::VolumeDetached {
                volume: volume.clone(),
                node: node.clone(),
            },
        );
    }

    /// StaleAttachmentCleared (Normal): the attachment to deleted `node` was removed.
    pub fn post_stale_attachment_cleared(
        &self,
        claim: Option<&ClaimName>,
        volume: &VolumeId,
        node: &NodeName,
    ) {
        self.post(
            claim,
            LifecycleEvent::StaleAttachmentCleared {
                volume: volume.clone(),
                node: node.clone(),
            },
        );
    }

    /// MigrationStarted (Normal), `timeout` printed to the second.
    pub fn post_migration_started(
        &self,
        claim: Option<&ClaimName>,
        volume: &VolumeId,
        source: &NodeName,
        target: &NodeName,
        timeout: Duration,
    ) {
        self.post(
            claim,
            LifecycleEvent::MigrationStarted {
                volume: volume.clone(),
                source: source.clone(),
                target: target.clone(),
                timeout,
            },
        );
    }

    /// MigrationCompleted (Normal), `took` printed to the second.
    pub fn post_migration_completed(
        &self,
        claim: Option<&ClaimName>,
        volume: &VolumeId,
        source: &NodeName,
        target: &NodeName,
        took: Duration,
    ) {
        self.post(
            claim,
            LifecycleEvent::MigrationCompleted {
                volume: volume.clone(),
                source: source.clone(),
                target: target.clone(),
                took,
            },
        );
    }

    /// MigrationFailed (Warning), `elapsed` printed to the second.
    pub fn post_migration_failed(
        &self,
        claim: Option<&ClaimName>,
        volume: &VolumeId,
        source: &NodeName,
        target: &NodeName,
        why: MigrationFailure,
        elapsed: Duration,
    ) {
        self.post(
            claim,
            LifecycleEvent::MigrationFailed {
                volume: volume.clone(),
                source: source.clone(),
                target: target.clone(),
                why,
                elapsed,
            },
        );
    }

    /// OrphanDetected: an info log line and a count; no Kubernetes event.
    pub fn post_orphan_detected(&self, node: &NodeName, nqn: &str) {
        self.post(
            None,
            LifecycleEvent::OrphanDetected {
                node: node.clone(),
                nqn: nqn.to_owned(),
            },
        );
    }

    /// OrphanCleaned: an info log line and a count; no Kubernetes event.
    pub fn post_orphan_cleaned(&self, node: &NodeName, nqn: &str) {
        self.post(
            None,
            LifecycleEvent::OrphanCleaned {
                node: node.clone(),
                nqn: nqn.to_owned(),
            },
        );
    }
}
