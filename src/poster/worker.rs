//! The background worker: claim lookups, spam filter, folding, writes, retries, flush, shutdown.
//!
//! One task owns all mutable state, so there are no locks on the data path. Posts arrive on a
//! channel; each becomes a lookup (shared by every post waiting on the same claim), then a
//! token from its claim's bucket, then a count in a *series* (one Event object per claim uid,
//! type, reason and message). A series has at most one write in flight; posts that arrive
//! meanwhile are coalesced into the next write. Requests run concurrently (bounded), retry
//! timers sleep on the shared clock.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use jiff::Timestamp;
use lru::LruCache;
use tokio::sync::{mpsc, oneshot};

use super::api::{ApiCaller, Failure};
use super::backoff::{RetryPolicy, SplitMix64};
use super::claims::{LiveClaim, Lookup, Subject, find_claim};
use super::spam::TokenBucket;
use super::write::{EventNamer, EventRecord};
use super::{Abandoned, ShutdownReport};
use crate::clock::SharedClock;
use crate::metrics::{DropCause, EventMetrics};
use crate::reason::{EventType, Reason};

/// Messages taken from the channel in one go before requests start.
const BATCH: usize = 4096;

/// What the poster handles send to the worker.
pub(crate) enum Message {
    Post(Posted),
    Flush(oneshot::Sender<()>),
    Shutdown {
        grace: Duration,
        reply: oneshot::Sender<ShutdownReport>,
    },
}

/// One accepted post.
pub(crate) struct Posted {
    pub(crate) subject: Subject,
    pub(crate) reason: Reason,
    pub(crate) event_type: EventType,
    pub(crate) message: String,
    pub(crate) at: Timestamp,
}

/// The worker's fixed settings.
pub(crate) struct Settings {
    pub(crate) component: String,
    pub(crate) instance: String,
    pub(crate) cache_size: NonZeroUsize,
    pub(crate) spam_burst: u32,
    pub(crate) spam_refill: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_in_flight: usize,
}

/// A post inside the worker: its arrival number and what it says.
struct Item {
    seq: u64,
    reason: Reason,
    event_type: EventType,
    message: String,
    at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing to do.
    Idle,
    /// Waiting for a request slot.
    Queued,
    /// A request is in flight.
    Running,
    /// Waiting out a retry delay.
    Backoff,
}

/// Posts waiting for one claim lookup.
struct PendingLookup {
    items: Vec<Item>,
    stage: Stage,
    failures: u32,
}

/// One Event object: what the server holds and what is still to be written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    uid: String,
    event_type: EventType,
    reason: Reason,
    message: String,
}

/// What is remembered of a series with nothing to write (the folding cache).
struct Written {
    name: Option<String>,
    created: bool,
    count: i32,
    first: Timestamp,
    last: Timestamp,
}

struct Series {
    claim: LiveClaim,
    name: Option<String>,
    created: bool,
    /// `count` as the server holds it.
    written: i32,
    first: Timestamp,
    last: Timestamp,
    /// Posts in the write in flight (or being retried).
    in_flight: Vec<u64>,
    /// Posts not yet part of a write.
    pending: Vec<u64>,
    stage: Stage,
    failures: u32,
}

enum Job {
    Lookup(Subject),
    Write(SeriesKey),
}

enum WriteOutcome {
    /// Created or patched to the record's count.
    Done,
    /// A create hit 409 and the stored event is ours, holding `count`.
    AlreadyThere {
        count: i32,
    },
    /// A create hit 409 and the name belongs to another event.
    NameTaken,
    /// A patch hit 404: the event expired.
    Expired,
    Failed(Failure),
}

enum Done {
    Lookup(Subject, Lookup),
    Write(SeriesKey, WriteOutcome),
}

enum Timer {
    Retry(Job),
    ShutdownDeadline,
}

pub(crate) struct Worker {
    api: ApiCaller,
    clock: SharedClock,
    metrics: EventMetrics,
    settings: Settings,
    admitted: Arc<AtomicUsize>,
    rx: mpsc::UnboundedReceiver<Message>,
    next_seq: u64,
    lookups: HashMap<Subject, PendingLookup>,
    busy: HashMap<SeriesKey, Series>,
    idle: LruCache<SeriesKey, Written>,
    buckets: LruCache<String, TokenBucket>,
    ready: VecDeque<Job>,
    requests: FuturesUnordered<BoxFuture<'static, Done>>,
    timers: FuturesUnordered<BoxFuture<'static, Timer>>,
    /// Posts that are neither finished nor waiting on a retry delay.
    active: BTreeSet<u64>,
    flushes: Vec<(u64, oneshot::Sender<()>)>,
    shutdown: Option<oneshot::Sender<ShutdownReport>>,
    namer: EventNamer,
    rng: SplitMix64,
}

impl Worker {
    pub(crate) fn new(
        api: ApiCaller,
        settings: Settings,
        admitted: Arc<AtomicUsize>,
        rx: mpsc::UnboundedReceiver<Message>,
    ) -> Self {
        Self {
            clock: api.clock.clone(),
            metrics: api.metrics.clone(),
            idle: LruCache::new(settings.cache_size),
            buckets: LruCache::new(settings.cache_size),
            rng: SplitMix64::new(settings.retry.seed),
            api,
            settings,
            admitted,
            rx,
            next_seq: 0,
            lookups: HashMap::new(),
            busy: HashMap::new(),
            ready: VecDeque::new(),
            requests: FuturesUnordered::new(),
            timers: FuturesUnordered::new(),
            active: BTreeSet::new(),
            flushes: Vec::new(),
            shutdown: None,
            namer: EventNamer::default(),
        }
    }

    /// Runs until shut down, or until every poster handle is gone and the work is done.
    pub(crate) async fn run(mut self) {
        let mut senders_gone = false;
        loop {
            self.launch();
            self.answer_flushes();
            if self.is_idle() && (senders_gone || self.shutdown.is_some()) {
                self.finish(Vec::new());
                return;
            }
            tokio::select! {
                message = self.rx.recv(), if !senders_gone => match message {
                    Some(message) => {
                        self.on_message(message);
                        // Take what else is waiting before starting requests, so a burst of
                        // posts shares one claim lookup and one write per series.
                        for _ in 0..BATCH {
                            match self.rx.try_recv() {
                                Ok(message) => self.on_message(message),
                                Err(_) => break,
                            }
                        }
                    }
                    None => senders_gone = true,
                },
                Some(done) = self.requests.next(), if !self.requests.is_empty() => self.on_done(done),
                Some(timer) = self.timers.next(), if !self.timers.is_empty() => match timer {
                    Timer::Retry(job) => self.on_retry_due(job),
                    Timer::ShutdownDeadline => {
                        let abandoned = self.abandon_all();
                        self.finish(abandoned);
                        return;
                    }
                },
                else => {
                    // Nothing can make progress: abandon what is left rather than spin.
                    let abandoned = self.abandon_all();
                    self.finish(abandoned);
                    return;
                }
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.lookups.is_empty() && self.busy.is_empty()
    }

    fn finish(&mut self, abandoned: Vec<Abandoned>) {
        for (_, reply) in self.flushes.drain(..) {
            let _ = reply.send(());
        }
        if let Some(reply) = self.shutdown.take() {
            let _ = reply.send(ShutdownReport { abandoned });
        }
    }

    fn on_message(&mut self, message: Message) {
        match message {
            Message::Post(posted) => self.on_post(posted),
            Message::Flush(reply) => self.flushes.push((self.next_seq, reply)),
            Message::Shutdown { grace, reply } => {
                self.shutdown = Some(reply);
                let sleep = self.clock.sleep(grace);
                self.timers.push(Box::pin(async move {
                    sleep.await;
                    Timer::ShutdownDeadline
                }));
            }
        }
    }

    fn on_post(&mut self, posted: Posted) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let item = Item {
            seq,
            reason: posted.reason,
            event_type: posted.event_type,
            message: posted.message,
            at: posted.at,
        };
        let lookup = self
            .lookups
            .entry(posted.subject.clone())
            .or_insert_with(|| PendingLookup {
                items: Vec::new(),
                stage: Stage::Idle,
                failures: 0,
            });
        if lookup.stage != Stage::Backoff {
            self.active.insert(seq);
        }
        lookup.items.push(item);
        if lookup.stage == Stage::Idle {
            lookup.stage = Stage::Queued;
            self.ready.push_back(Job::Lookup(posted.subject));
        }
    }

    /// Starts queued jobs while request slots are free.
    fn launch(&mut self) {
        while self.requests.len() < self.settings.max_in_flight.max(1) {
            let Some(job) = self.ready.pop_front() else {
                return;
            };
            match job {
                Job::Lookup(subject) => {
                    let Some(lookup) = self.lookups.get_mut(&subject) else {
                        continue;
                    };
                    lookup.stage = Stage::Running;
                    let api = self.api.clone();
                    self.requests.push(Box::pin(async move {
                        let found = find_claim(&api, &subject).await;
                        Done::Lookup(subject, found)
                    }));
                }
                Job::Write(key) => self.start_write(key),
            }
        }
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Lookup(subject, found) => self.on_lookup(subject, found),
            Done::Write(key, outcome) => self.on_write(key, outcome),
        }
    }

    fn on_retry_due(&mut self, job: Job) {
        match &job {
            Job::Lookup(subject) => {
                let Some(lookup) = self.lookups.get_mut(subject) else {
                    return;
                };
                lookup.stage = Stage::Queued;
                self.active.extend(lookup.items.iter().map(|item| item.seq));
            }
            Job::Write(key) => {
                let Some(series) = self.busy.get_mut(key) else {
                    return;
                };
                series.stage = Stage::Queued;
                self.active.extend(series.in_flight.iter().copied());
                self.active.extend(series.pending.iter().copied());
            }
        }
        self.ready.push_back(job);
    }

    fn on_lookup(&mut self, subject: Subject, found: Lookup) {
        let Some(mut lookup) = self.lookups.remove(&subject) else {
            return;
        };
        match found {
            Lookup::Found(claim) => {
                for item in std::mem::take(&mut lookup.items) {
                    self.admit(&claim, item);
                }
            }
            Lookup::Skipped { cause, claim } => {
                let mut reasons: Vec<Reason> =
                    lookup.items.iter().map(|item| item.reason).collect();
                reasons.dedup();
                let reasons: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
                tracing::warn!(
                    reason = reasons.join(","),
                    claim = %claim,
                    cause = cause.as_str(),
                    events = lookup.items.len(),
                    "event skipped: its claim could not be found"
                );
                for item in &lookup.items {
                    self.metrics.count_skipped(item.reason, cause, 1);
                    self.complete(item.seq);
                }
            }
            Lookup::Failed(failure) => {
                let retry_after = match &failure {
                    Failure::Retryable { after, .. } => Some(*after),
                    _ => None,
                };
                lookup.failures += 1;
                match retry_after {
                    Some(after) if lookup.failures < self.settings.retry.max_attempts => {
                        let delay =
                            self.settings
                                .retry
                                .delay(lookup.failures, after, &mut self.rng);
                        tracing::debug!(%subject, ?delay, ?failure, "claim lookup failed; retrying");
                        lookup.stage = Stage::Backoff;
                        for item in &lookup.items {
                            self.active.remove(&item.seq);
                        }
                        self.lookups.insert(subject.clone(), lookup);
                        self.arm_retry(Job::Lookup(subject), delay);
                    }
                    _ => {
                        let cause = if retry_after.is_some() {
                            DropCause::RetriesExhausted
                        } else {
                            DropCause::Rejected
                        };
                        for item in &lookup.items {
                            self.metrics.count_dropped(item.reason, cause, 1);
                            tracing::error!(
                                reason = %item.reason,
                                %subject,
                                cause = cause.as_str(),
                                ?failure,
                                "event dropped: its claim could not be read"
                            );
                            self.complete(item.seq);
                        }
                    }
                }
            }
        }
    }

    /// A post whose claim is known: the spam filter, then into its series.
    fn admit(&mut self, claim: &LiveClaim, item: Item) {
        let now = self.clock.now();
        let (burst, refill) = (self.settings.spam_burst, self.settings.spam_refill);
        let bucket = self
            .buckets
            .get_or_insert_mut(claim.uid.clone(), || TokenBucket::full(burst, now));
        if !bucket.take(burst, refill, now) {
            if !bucket.limited {
                bucket.limited = true;
                tracing::warn!(
                    claim = %claim.name,
                    reason = %item.reason,
                    "events for this claim are rate limited; dropping until the bucket refills"
                );
            }
            self.metrics
                .count_dropped(item.reason, DropCause::RateLimited, 1);
            self.complete(item.seq);
            return;
        }
        let key = SeriesKey {
            uid: claim.uid.clone(),
            event_type: item.event_type,
            reason: item.reason,
            message: item.message,
        };
        let series = match self.busy.remove(&key) {
            Some(series) => series,
            None => {
                let written = self.idle.pop(&key);
                Series {
                    claim: claim.clone(),
                    name: written.as_ref().and_then(|w| w.name.clone()),
                    created: written.as_ref().is_some_and(|w| w.created),
                    written: written.as_ref().map_or(0, |w| w.count),
                    first: written.as_ref().map_or(item.at, |w| w.first),
                    last: written.as_ref().map_or(item.at, |w| w.last),
                    in_flight: Vec::new(),
                    pending: Vec::new(),
                    stage: Stage::Idle,
                    failures: 0,
                }
            }
        };
        let mut series = series;
        series.last = series.last.max(item.at);
        series.pending.push(item.seq);
        match series.stage {
            Stage::Idle => {
                series.stage = Stage::Queued;
                self.ready.push_back(Job::Write(key.clone()));
            }
            Stage::Backoff => {
                self.active.remove(&item.seq);
            }
            Stage::Queued | Stage::Running => {}
        }
        self.busy.insert(key, series);
    }

    fn start_write(&mut self, key: SeriesKey) {
        let Some(series) = self.busy.get_mut(&key) else {
            return;
        };
        series.in_flight.append(&mut series.pending);
        series.stage = Stage::Running;
        let name = match &series.name {
            Some(name) => name.clone(),
            None => {
                let random = self.rng.next_u64();
                let name = self
                    .namer
                    .name(series.claim.name.name(), series.first, random);
                series.name = Some(name.clone());
                name
            }
        };
        let count = series.written + i32::try_from(series.in_flight.len()).unwrap_or(i32::MAX);
        let record = EventRecord {
            name,
            claim: series.claim.clone(),
            event_type: key.event_type,
            reason: key.reason.as_str(),
            message: key.message.clone(),
            component: self.settings.component.clone(),
            instance: self.settings.instance.clone(),
            count,
            first: series.first,
            last: series.last,
        };
        let create = !series.created;
        let api = self.api.clone();
        self.requests.push(Box::pin(async move {
            let outcome = write(&api, &record, create).await;
            Done::Write(key, outcome)
        }));
    }

    fn on_write(&mut self, key: SeriesKey, outcome: WriteOutcome) {
        let Some(mut series) = self.busy.remove(&key) else {
            return;
        };
        let target = series.written + i32::try_from(series.in_flight.len()).unwrap_or(i32::MAX);
        match outcome {
            WriteOutcome::Done => {
                series.created = true;
                series.written = target;
                series.failures = 0;
                self.delivered(&key, &mut series);
            }
            WriteOutcome::AlreadyThere { count } => {
                series.created = true;
                series.failures = 0;
                if count >= target {
                    series.written = target;
                    self.delivered(&key, &mut series);
                } else {
                    // An earlier attempt of ours landed with a smaller count (the answer was
                    // lost): `written` still counts what preceded this batch, so the next
                    // write is a PATCH to the same absolute target.
                    self.write_again_now(key, series);
                    return;
                }
            }
            WriteOutcome::NameTaken | WriteOutcome::Expired => {
                series.failures += 1;
                series.name = None;
                series.created = false;
                if series.failures >= self.settings.retry.max_attempts {
                    self.give_up(
                        &key,
                        &mut series,
                        DropCause::RetriesExhausted,
                        "the event name stays taken or the event keeps expiring",
                    );
                } else {
                    self.write_again_now(key, series);
                    return;
                }
            }
            WriteOutcome::Failed(Failure::Retryable { after, detail }) => {
                series.failures += 1;
                if series.failures >= self.settings.retry.max_attempts {
                    self.give_up(&key, &mut series, DropCause::RetriesExhausted, &detail);
                } else {
                    let delay = self
                        .settings
                        .retry
                        .delay(series.failures, after, &mut self.rng);
                    tracing::debug!(reason = %key.reason, claim = %series.claim.name, ?delay, %detail, "event write failed; retrying");
                    series
                        .pending
                        .splice(0..0, std::mem::take(&mut series.in_flight));
                    for seq in &series.pending {
                        self.active.remove(seq);
                    }
                    series.stage = Stage::Backoff;
                    self.busy.insert(key.clone(), series);
                    self.arm_retry(Job::Write(key), delay);
                    return;
                }
            }
            WriteOutcome::Failed(failure) => {
                let detail = match failure {
                    Failure::Rejected { detail, .. } => detail,
                    Failure::NotFound => "404 the namespace or resource does not exist".to_owned(),
                    Failure::Conflict => "409 conflict".to_owned(),
                    Failure::Retryable { detail, .. } => detail,
                };
                self.give_up(&key, &mut series, DropCause::Rejected, &detail);
            }
        }
        self.settle_series(key, series);
    }

    fn delivered(&mut self, key: &SeriesKey, series: &mut Series) {
        tracing::info!(
            reason = %key.reason,
            r#type = key.event_type.as_str(),
            claim = %series.claim.name,
            count = series.written,
            message = %key.message,
            "event written"
        );
        for seq in std::mem::take(&mut series.in_flight) {
            self.complete(seq);
        }
    }

    fn give_up(&mut self, key: &SeriesKey, series: &mut Series, cause: DropCause, detail: &str) {
        let n = series.in_flight.len() as u64;
        self.metrics.count_dropped(key.reason, cause, n);
        tracing::error!(
            reason = %key.reason,
            claim = %series.claim.name,
            cause = cause.as_str(),
            events = n,
            error = %detail,
            "event dropped"
        );
        for seq in std::mem::take(&mut series.in_flight) {
            self.complete(seq);
        }
        series.failures = 0;
    }

    /// Puts the batch in flight back in front of the pending posts and queues a write at once.
    fn write_again_now(&mut self, key: SeriesKey, mut series: Series) {
        series
            .pending
            .splice(0..0, std::mem::take(&mut series.in_flight));
        self.settle_series(key, series);
    }

    /// After a write ended: write again if posts arrived meanwhile, else remember the series.
    fn settle_series(&mut self, key: SeriesKey, mut series: Series) {
        if series.pending.is_empty() {
            self.idle.put(
                key,
                Written {
                    name: series.name,
                    created: series.created,
                    count: series.written,
                    first: series.first,
                    last: series.last,
                },
            );
        } else {
            series.stage = Stage::Queued;
            self.ready.push_back(Job::Write(key.clone()));
            self.busy.insert(key, series);
        }
    }

    fn arm_retry(&mut self, job: Job, delay: Duration) {
        let sleep = self.clock.sleep(delay);
        self.timers.push(Box::pin(async move {
            sleep.await;
            Timer::Retry(job)
        }));
    }

    fn complete(&mut self, seq: u64) {
        self.active.remove(&seq);
        self.admitted.fetch_sub(1, Ordering::AcqRel);
    }

    fn answer_flushes(&mut self) {
        let oldest_active = self.active.first().copied();
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flushes)
            .into_iter()
            .partition(|(barrier, _)| oldest_active.is_none_or(|seq| seq >= *barrier));
        self.flushes = waiting;
        for (_, reply) in done {
            let _ = reply.send(());
        }
    }

    /// Gives up everything still held (shutdown deadline): counted and reported.
    fn abandon_all(&mut self) -> Vec<Abandoned> {
        let mut abandoned = Vec::new();
        for (subject, lookup) in std::mem::take(&mut self.lookups) {
            for item in lookup.items {
                self.metrics
                    .count_dropped(item.reason, DropCause::Shutdown, 1);
                self.complete(item.seq);
                abandoned.push(Abandoned {
                    reason: item.reason,
                    claim: subject.to_string(),
                    message: item.message,
                    count: 1,
                });
            }
        }
        for (key, series) in std::mem::take(&mut self.busy) {
            let seqs: Vec<u64> = series.in_flight.into_iter().chain(series.pending).collect();
            self.metrics
                .count_dropped(key.reason, DropCause::Shutdown, seqs.len() as u64);
            abandoned.push(Abandoned {
                reason: key.reason,
                claim: format!("claim {}", series.claim.name),
                message: key.message,
                count: seqs.len(),
            });
            for seq in seqs {
                self.complete(seq);
            }
        }
        if !abandoned.is_empty() {
            tracing::warn!(
                events = abandoned.iter().map(|a| a.count).sum::<usize>(),
                "shutdown deadline passed; events not written"
            );
        }
        abandoned
    }
}

/// One write attempt of a series: create (with 409 read-back) or patch (404 → expired).
async fn write(api: &ApiCaller, record: &EventRecord, create: bool) -> WriteOutcome {
    if !create {
        return match record.patch_count(api).await {
            Ok(()) => WriteOutcome::Done,
            Err(Failure::NotFound) => WriteOutcome::Expired,
            Err(Failure::Conflict) => WriteOutcome::Failed(Failure::Retryable {
                after: None,
                detail: "409 on patch".to_owned(),
            }),
            Err(failure) => WriteOutcome::Failed(failure),
        };
    }
    match record.create(api).await {
        Ok(()) => WriteOutcome::Done,
        Err(Failure::Conflict) => match record.read_stored(api).await {
            Ok(Some(stored)) if record.is_same_as(&stored) => WriteOutcome::AlreadyThere {
                count: stored.count.unwrap_or(1),
            },
            Ok(Some(_)) => WriteOutcome::NameTaken,
            // Gone between the 409 and the read: try the create again.
            Ok(None) => WriteOutcome::Failed(Failure::Retryable {
                after: None,
                detail: "409 on create, then the event was gone".to_owned(),
            }),
            Err(failure) => WriteOutcome::Failed(failure),
        },
        Err(failure) => WriteOutcome::Failed(failure),
    }
}
