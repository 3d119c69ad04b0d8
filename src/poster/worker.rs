//! The background worker: claim lookups, folding, the spam filter, writes, retries, flush,
//! shutdown.
//!
//! One task owns all mutable state, so there are no locks on the data path. Posts arrive on a
//! channel; each becomes a lookup (shared by every post waiting on the same claim), then a
//! count in a *series* (one Event object per claim uid, type, reason and message). A series
//! has at most one write in flight; posts that arrive meanwhile are coalesced into the next
//! write. Requests run concurrently (bounded), retry timers sleep on the shared clock.
//!
//! The spam filter (`docs/events.md` §5) limits *writes*, never information: each new write of a
//! series (a create, or a patch carrying new posts) takes a token from its claim's bucket;
//! re-attempts of the same write take none. A series without a token *waits* with its posts
//! (their count grows, nothing is dropped); when the claim's next token is due the worker
//! wakes on the clock and gives it to the waiting Warning series first, otherwise to the one
//! posted first. Waiting series are bounded by the series cache size: the least recently
//! posted-to one is evicted, its posts dropped and counted `rate_limited`. A post folded into a
//! waiting series gives its queue slot back (it is a count now, not an object), so a claim
//! over its budget never fills the queue that every other claim shares.

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use jiff::Timestamp;
use lru::LruCache;
use tokio::sync::{mpsc, oneshot};

use super::api::{ApiCaller, Failure};
use super::backoff::{Again, Next, Retries, RetryPolicy, SplitMix64};
use super::claims::{ClaimIndex, LiveClaim, Lookup, Subject, find_claim};
use super::ledger::{Batch, Ledger, Mark};
use super::spam::TokenBucket;
use super::write::{EventNamer, EventRecord, Stored, WriteOutcome, Writer, write};
use super::{Abandoned, ShutdownReport, WarnLimiter};
use crate::clock::SharedClock;
use crate::metrics::{DropCause, EventMetrics};
use crate::reason::{EventType, Reason};

/// Gives a map's spare room back once it holds under a quarter of it (amortised: the map
/// must have emptied by three quarters since it was last sized).
fn shrink_if_sparse<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

/// Messages taken from the channel in one go before requests start.
const BATCH: usize = 4096;

/// What the poster handles send to the worker.
pub(crate) enum Message {
    Post(Posted),
    Flush(oneshot::Sender<()>),
    /// Stop within `grace`; the report goes to the shared report slot.
    Shutdown {
        grace: Duration,
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
    /// Who writes: component, instance and tag, shared by every write.
    pub(crate) writer: Arc<Writer>,
    /// This poster's tag: the writer annotation and the low bits of its event names.
    pub(crate) tag: u64,
    pub(crate) cache_size: NonZeroUsize,
    pub(crate) spam_burst: u32,
    pub(crate) spam_refill: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_in_flight: usize,
}

/// What the worker shares with the poster handles.
pub(crate) struct Links {
    /// Queue slots held (posts accepted and not finished).
    pub(crate) admitted: Arc<AtomicUsize>,
    /// Posts not finished that hold no queue slot (folded while waiting for a token).
    pub(crate) folded: Arc<AtomicUsize>,
    /// Where the worker leaves its shutdown report when it stops.
    pub(crate) report: Arc<Mutex<Option<ShutdownReport>>>,
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
    /// Waiting for a spam-filter token.
    Waiting,
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
    retries: Retries,
}

/// One Event object: the claim uid, type, reason and message it is about. Cheap to clone
/// (the uid and the message are shared): the busy map, the waiting lists, the eviction order,
/// the job queue and the write in flight all hold the same text once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    uid: Arc<str>,
    event_type: EventType,
    reason: Reason,
    message: Arc<str>,
}

/// A series with something to write (or waiting for a token to write it).
struct Series {
    /// The claim, shared by every series of one lookup.
    claim: Arc<LiveClaim>,
    /// What the server holds of its Event, as last seen.
    stored: Stored,
    /// Posts in the write in flight (or being retried).
    in_flight: Batch,
    /// Posts not yet part of a write.
    pending: Batch,
    stage: Stage,
    retries: Retries,
    /// The write in progress has its token (its re-attempts take none).
    tokened: bool,
}

enum Job {
    Lookup(Subject),
    Write(SeriesKey),
}

enum Done {
    Lookup(Subject, Lookup),
    Write(SeriesKey, WriteOutcome),
}

enum Timer {
    Retry(Job),
    /// The claim with this uid has a token due.
    Token(Arc<str>),
    ShutdownDeadline,
}

pub(crate) struct Worker {
    api: ApiCaller,
    claims: Arc<ClaimIndex>,
    clock: SharedClock,
    metrics: EventMetrics,
    settings: Settings,
    /// Where the worker leaves its shutdown report when it stops.
    report: Arc<Mutex<Option<ShutdownReport>>>,
    rx: mpsc::UnboundedReceiver<Message>,
    next_seq: u64,
    lookups: HashMap<Subject, PendingLookup>,
    /// Boxed: the table's slots (twice as many as entries, at worst) hold a pointer each, not
    /// a whole series; a storm that fills it to the series cache's size and ebbs leaves 48
    /// bytes a slot behind, not 280.
    busy: HashMap<SeriesKey, Box<Series>>,
    /// The folding cache: what the server holds of series with nothing to write.
    idle: LruCache<SeriesKey, Stored>,
    buckets: LruCache<Arc<str>, TokenBucket>,
    /// Series waiting for a token, by claim uid.
    waiting: HashMap<Arc<str>, Vec<SeriesKey>>,
    /// Every waiting series, least recently posted-to first (bounded: the series cache size).
    waiting_order: LruCache<SeriesKey, ()>,
    /// Claims whose token timer is armed.
    token_timers: HashSet<Arc<str>>,
    ready: VecDeque<Job>,
    requests: FuturesUnordered<BoxFuture<'static, Done>>,
    timers: FuturesUnordered<BoxFuture<'static, Timer>>,
    /// Queue slots, folded counts and flushes.
    ledger: Ledger,
    shutting_down: bool,
    namer: EventNamer,
    rng: SplitMix64,
    evictions: WarnLimiter,
}

impl Worker {
    pub(crate) fn new(
        api: ApiCaller,
        claims: Arc<ClaimIndex>,
        settings: Settings,
        links: Links,
        rx: mpsc::UnboundedReceiver<Message>,
    ) -> Self {
        Self {
            clock: api.clock.clone(),
            metrics: api.metrics.clone(),
            claims,
            idle: LruCache::new(settings.cache_size),
            buckets: LruCache::new(settings.cache_size),
            waiting_order: LruCache::new(settings.cache_size),
            rng: SplitMix64::new(settings.retry.seed),
            namer: EventNamer::new(settings.tag),
            api,
            settings,
            report: links.report,
            ledger: Ledger::new(links.admitted, links.folded),
            rx,
            next_seq: 0,
            lookups: HashMap::new(),
            busy: HashMap::new(),
            waiting: HashMap::new(),
            token_timers: HashSet::new(),
            ready: VecDeque::new(),
            requests: FuturesUnordered::new(),
            timers: FuturesUnordered::new(),
            shutting_down: false,
            evictions: WarnLimiter::new(),
        }
    }

    /// Runs until shut down, or until every poster handle is gone and the work is done.
    pub(crate) async fn run(mut self) {
        let mut senders_gone = false;
        loop {
            self.launch();
            self.ledger.answer_flushes();
            // A burst's tables do not outlive it.
            shrink_if_sparse(&mut self.lookups);
            shrink_if_sparse(&mut self.busy);
            if self.is_idle() && (senders_gone || self.shutting_down) {
                self.stop(Vec::new());
                return;
            }
            // `biased`, in this order: finished requests, then due timers, then new posts. Work
            // in flight (at most `max_in_flight`) is never starved by a flood of posts, and a
            // simulation's output does not depend on tokio's random branch choice.
            tokio::select! {
                biased;
                Some(done) = self.requests.next(), if !self.requests.is_empty() => self.on_done(done),
                Some(timer) = self.timers.next(), if !self.timers.is_empty() => match timer {
                    Timer::Retry(job) => self.on_retry_due(job),
                    Timer::Token(uid) => {
                        self.token_timers.remove(&uid);
                        self.serve_claim(&uid);
                    }
                    Timer::ShutdownDeadline => {
                        let abandoned = self.abandon_all();
                        self.stop(abandoned);
                        return;
                    }
                },
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
                else => {
                    // Nothing can make progress: abandon what is left rather than spin.
                    let abandoned = self.abandon_all();
                    self.stop(abandoned);
                    return;
                }
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.lookups.is_empty() && self.busy.is_empty()
    }

    /// Stops: closes the channel first, so a post racing the exit is either refused at `send`
    /// (the handle counts it) or is still in the channel here (counted and reported now), and
    /// its queue slot is returned either way. Then leaves the report and answers flushes.
    fn stop(&mut self, mut abandoned: Vec<Abandoned>) {
        self.rx.close();
        self.claims.stop();
        while let Ok(message) = self.rx.try_recv() {
            match message {
                Message::Post(posted) => {
                    self.metrics
                        .count_dropped(posted.reason, DropCause::Shutdown, 1);
                    self.ledger.return_slot();
                    abandoned.push(Abandoned {
                        reason: posted.reason,
                        claim: posted.subject.to_string(),
                        message: posted.message,
                        count: 1,
                    });
                }
                Message::Flush(reply) => {
                    let _ = reply.send(());
                }
                Message::Shutdown { .. } => {}
            }
        }
        if !abandoned.is_empty() {
            tracing::warn!(
                events = abandoned.iter().map(|a| a.count).sum::<usize>(),
                "shutdown deadline passed; events not written"
            );
        }
        self.ledger.answer_all();
        let mut report = self
            .report
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *report = Some(ShutdownReport { abandoned });
    }

    fn on_message(&mut self, message: Message) {
        match message {
            Message::Post(posted) => self.on_post(posted),
            Message::Flush(reply) => self.ledger.flush(self.next_seq, reply),
            Message::Shutdown { grace } => {
                self.shutting_down = true;
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
                retries: Retries::default(),
            });
        if lookup.stage != Stage::Backoff {
            self.ledger.watch(seq);
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
                    let claims = self.claims.clone();
                    self.requests.push(Box::pin(async move {
                        let found = find_claim(&api, &claims, &subject).await;
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
                self.ledger
                    .watch_all(lookup.items.iter().map(|item| item.seq));
            }
            Job::Write(key) => {
                let Some(series) = self.busy.get_mut(key) else {
                    return;
                };
                series.stage = Stage::Queued;
                self.ledger.watch_all(series.in_flight.active_seqs());
                self.ledger.watch_all(series.pending.active_seqs());
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
                let uid: Arc<str> = Arc::from(claim.uid.as_str());
                let claim = Arc::new(claim);
                for item in std::mem::take(&mut lookup.items) {
                    self.admit(&claim, &uid, item);
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
                    self.ledger.complete(item.seq);
                }
            }
            Lookup::Failed(failure) => {
                let again = match &failure {
                    Failure::Retryable { after, .. } => Again::Later(*after),
                    _ => Again::Never,
                };
                let cause = match lookup
                    .retries
                    .failed(&self.settings.retry, again, &mut self.rng)
                {
                    Next::After(delay) => {
                        tracing::debug!(%subject, ?delay, ?failure, "claim lookup failed; retrying");
                        lookup.stage = Stage::Backoff;
                        self.ledger
                            .unwatch_all(lookup.items.iter().map(|item| item.seq));
                        self.lookups.insert(subject.clone(), lookup);
                        self.arm_retry(Job::Lookup(subject), delay);
                        return;
                    }
                    // A lookup is never retried at once; a retryable failure backs off.
                    Next::Now | Next::Exhausted => DropCause::RetriesExhausted,
                    Next::Rejected => DropCause::Rejected,
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
                    self.ledger.complete(item.seq);
                }
            }
        }
    }

    /// A post whose claim is known: into its series, which writes now, waits for a token,
    /// or carries it in its next write.
    fn admit(&mut self, claim: &Arc<LiveClaim>, uid: &Arc<str>, item: Item) {
        let key = SeriesKey {
            uid: uid.clone(),
            event_type: item.event_type,
            reason: item.reason,
            message: Arc::from(item.message),
        };
        let mut series = match self.busy.remove(&key) {
            Some(series) => series,
            None => Box::new(Series {
                claim: claim.clone(),
                stored: self
                    .idle
                    .pop(&key)
                    .unwrap_or_else(|| Stored::unwritten(item.at)),
                in_flight: Batch::default(),
                pending: Batch::default(),
                stage: Stage::Idle,
                retries: Retries::default(),
                tokened: false,
            }),
        };
        series.stored.last = series.stored.last.max(item.at);
        let mark = Mark {
            seq: item.seq,
            at: item.at,
        };
        let stage = series.stage;
        if stage == Stage::Waiting {
            // Folded into a waiting series: a count, not a queue slot.
            self.ledger.unwatch(item.seq);
            self.ledger.fold();
            series.pending.append(Batch {
                marks: Vec::new(),
                folded: 1,
                folded_first: Some(mark),
            });
        } else {
            series.pending.marks.push(mark);
        }
        self.busy.insert(key.clone(), series);
        match stage {
            Stage::Idle => self.want_write(key),
            Stage::Waiting => {
                self.metrics.count_deferred(item.reason, 1);
                // Recently posted to: the last one to be evicted.
                self.waiting_order.promote(&key);
            }
            Stage::Backoff => self.ledger.unwatch(item.seq),
            Stage::Queued | Stage::Running => {}
        }
    }

    /// A series (in `busy`, idle, with pending posts) needs a new write: it takes a token from
    /// its claim's bucket, or waits for one.
    fn want_write(&mut self, key: SeriesKey) {
        let Some(series) = self.busy.get_mut(&key) else {
            return;
        };
        if series.tokened {
            series.stage = Stage::Queued;
            self.ready.push_back(Job::Write(key));
            return;
        }
        series.stage = Stage::Waiting;
        self.ledger.unwatch_all(series.pending.active_seqs());
        let uid = key.uid.clone();
        self.waiting
            .entry(uid.clone())
            .or_default()
            .push(key.clone());
        if let Some((evicted, ())) = self.waiting_order.push(key.clone(), ())
            && evicted != key
        {
            self.evict_waiting(evicted);
        }
        self.serve_claim(&uid);
        let mut released = 0;
        if let Some(series) = self.busy.get_mut(&key)
            && series.stage == Stage::Waiting
        {
            self.metrics
                .count_deferred(key.reason, series.pending.len() as u64);
            // Its posts wait as a count and give their queue slots back.
            let marks = std::mem::take(&mut series.pending.marks);
            released = marks.len();
            let oldest = marks.first().copied();
            series.pending.append(Batch {
                marks: Vec::new(),
                folded: marks.len(),
                folded_first: oldest,
            });
            if !series.stored.created {
                tracing::debug!(
                    reason = %key.reason,
                    claim = %series.claim.name,
                    "event waits for a spam-filter token"
                );
            }
        }
        for _ in 0..released {
            self.ledger.fold();
        }
    }

    /// Gives the claim's available tokens to its waiting series (Warnings first, then the
    /// series posted to first); arms a timer for the next token if some still wait.
    fn serve_claim(&mut self, uid: &Arc<str>) {
        let (burst, refill) = (self.settings.spam_burst, self.settings.spam_refill);
        loop {
            let Some(list) = self.waiting.get_mut(uid) else {
                return;
            };
            if list.is_empty() {
                self.waiting.remove(uid);
                return;
            }
            let now = self.clock.now();
            let bucket = self
                .buckets
                .get_or_insert_mut(uid.clone(), || TokenBucket::full(burst, refill, now));
            if !bucket.take(burst, refill, now) {
                let wait = bucket.until_next(burst, refill, now);
                if self.token_timers.insert(uid.clone()) {
                    let sleep = self.clock.sleep(wait);
                    let uid = uid.clone();
                    self.timers.push(Box::pin(async move {
                        sleep.await;
                        Timer::Token(uid)
                    }));
                }
                return;
            }
            let busy = &self.busy;
            let best = list
                .iter()
                .enumerate()
                .min_by_key(|(_, key)| {
                    let oldest = busy
                        .get(*key)
                        .and_then(|s| s.pending.oldest().map(|m| m.seq))
                        .unwrap_or(u64::MAX);
                    (key.event_type != EventType::Warning, oldest)
                })
                .map(|(index, _)| index);
            let Some(index) = best else {
                return;
            };
            let key = list.swap_remove(index);
            self.waiting_order.pop(&key);
            let Some(series) = self.busy.get_mut(&key) else {
                continue;
            };
            series.tokened = true;
            series.stage = Stage::Queued;
            self.ledger.watch_all(series.pending.active_seqs());
            self.ready.push_back(Job::Write(key));
        }
    }

    /// A waiting series pushed out of the bounded waiting set: its posts are dropped and
    /// counted `rate_limited`; what the server already holds stays remembered.
    fn evict_waiting(&mut self, key: SeriesKey) {
        if let Some(list) = self.waiting.get_mut(&key.uid) {
            list.retain(|k| *k != key);
            if list.is_empty() {
                self.waiting.remove(&key.uid);
            }
        }
        let Some(mut series) = self.busy.remove(&key) else {
            return;
        };
        let n = series.pending.len() as u64;
        self.metrics
            .count_dropped(key.reason, DropCause::RateLimited, n);
        if let Some(suppressed) = self.evictions.allow(self.clock.now()) {
            tracing::warn!(
                reason = %key.reason,
                claim = %series.claim.name,
                events = n,
                evicted_since_last_warning = suppressed,
                "events dropped: too many series waiting for a spam-filter token (rate_limited)"
            );
        }
        let dropped = std::mem::take(&mut series.pending);
        self.ledger.finish(dropped);
        if series.stored.created {
            self.remember(key, series);
        }
    }

    fn start_write(&mut self, key: SeriesKey) {
        let Some(series) = self.busy.get_mut(&key) else {
            return;
        };
        let pending = std::mem::take(&mut series.pending);
        series.in_flight.append(pending);
        series.stage = Stage::Running;
        let name = match &series.stored.name {
            Some(name) => name.clone(),
            None => {
                let random = self.rng.next_u64();
                let name = self
                    .namer
                    .name(series.claim.name.name(), series.stored.first, random);
                series.stored.name = Some(name.clone());
                name
            }
        };
        let record = EventRecord {
            name,
            writer: self.settings.writer.clone(),
            resource_version: series.stored.resource_version.clone(),
            claim: series.claim.clone(),
            event_type: key.event_type,
            reason: key.reason.as_str(),
            message: key.message.clone(),
            count: series.target(),
            first: series.stored.first,
            last: series.stored.last,
        };
        let create = !series.stored.created;
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
        let target = series.target();
        // `Some`: the write did not end it; how to go on, and why.
        let failed = match outcome {
            WriteOutcome::Written { resource_version } => {
                series.stored.created = true;
                series.stored.resource_version = resource_version;
                series.stored.count = target;
                series.retries.reset();
                self.delivered(&key, &mut series);
                None
            }
            WriteOutcome::Stored {
                count,
                resource_version,
            } => {
                series.stored.created = true;
                series.stored.resource_version = resource_version;
                // The server holds `count`: the earliest `count - written` posts in flight
                // landed with an earlier attempt of this write (its answer was lost); the
                // series counts on from what the server holds, never below it.
                let landed = usize::try_from(count.saturating_sub(series.stored.count))
                    .unwrap_or(0)
                    .min(series.in_flight.len());
                self.ledger.finish_first(&mut series.in_flight, landed);
                series.stored.count = count;
                if series.in_flight.is_empty() {
                    series.retries.reset();
                    self.delivered(&key, &mut series);
                    None
                } else {
                    Some((
                        Again::Now,
                        "the event keeps changing under its writes".to_owned(),
                    ))
                }
            }
            WriteOutcome::NameTaken | WriteOutcome::Expired => {
                series.stored.forget();
                Some((
                    Again::Now,
                    "the event name stays taken or the event keeps expiring".to_owned(),
                ))
            }
            WriteOutcome::Failed(Failure::Retryable { after, detail }) => {
                Some((Again::Later(after), detail))
            }
            WriteOutcome::Failed(failure) => {
                let detail = match failure {
                    Failure::Rejected { detail, .. } | Failure::Retryable { detail, .. } => detail,
                    Failure::NotFound => "404 the namespace or resource does not exist".to_owned(),
                    Failure::Conflict => "409 conflict".to_owned(),
                };
                Some((Again::Never, detail))
            }
        };
        if let Some((again, detail)) = failed {
            match series
                .retries
                .failed(&self.settings.retry, again, &mut self.rng)
            {
                Next::Now => {
                    self.write_again_now(key, series);
                    return;
                }
                Next::After(delay) => {
                    tracing::debug!(reason = %key.reason, claim = %series.claim.name, ?delay, %detail, "event write failed; retrying");
                    put_back_in_flight(&mut series);
                    self.ledger.unwatch_all(series.pending.active_seqs());
                    series.stage = Stage::Backoff;
                    self.busy.insert(key.clone(), series);
                    self.arm_retry(Job::Write(key), delay);
                    return;
                }
                Next::Exhausted => {
                    self.give_up(&key, &mut series, DropCause::RetriesExhausted, &detail);
                }
                Next::Rejected => self.give_up(&key, &mut series, DropCause::Rejected, &detail),
            }
        }
        self.settle_series(key, series);
    }

    fn delivered(&mut self, key: &SeriesKey, series: &mut Series) {
        tracing::info!(
            reason = %key.reason,
            r#type = key.event_type.as_str(),
            claim = %series.claim.name,
            count = series.stored.count,
            message = %key.message,
            "event written"
        );
        let written = std::mem::take(&mut series.in_flight);
        self.ledger.finish(written);
        series.tokened = false;
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
        let dropped = std::mem::take(&mut series.in_flight);
        self.ledger.finish(dropped);
        series.retries.reset();
        series.tokened = false;
        if !series.stored.created {
            // Nothing of it is on the server: the dropped posts leave no trace, and the next
            // create gets a fresh name and the times of the posts it carries.
            series.stored.name = None;
            series.stored.resource_version = None;
            if series.stored.count == 0
                && let Some(oldest) = series.pending.oldest()
            {
                series.stored.first = oldest.at;
                series.stored.last = series
                    .pending
                    .marks
                    .iter()
                    .map(|m| m.at)
                    .fold(oldest.at, Timestamp::max);
            }
        }
    }

    /// Puts the batch in flight back in front of the pending posts and queues the same write
    /// again at once (it keeps its token).
    fn write_again_now(&mut self, key: SeriesKey, mut series: Box<Series>) {
        put_back_in_flight(&mut series);
        self.settle_series(key, series);
    }

    /// After a write ended: write again if posts are waiting, else remember the series.
    fn settle_series(&mut self, key: SeriesKey, mut series: Box<Series>) {
        series.stage = Stage::Idle;
        if series.pending.is_empty() {
            if series.stored.created || series.stored.count > 0 {
                self.remember(key, series);
            }
            return;
        }
        self.busy.insert(key.clone(), series);
        self.want_write(key);
    }

    /// Keeps what the server holds of a series with nothing to write (the folding cache).
    fn remember(&mut self, key: SeriesKey, series: Box<Series>) {
        self.idle.put(key, series.stored);
    }

    fn arm_retry(&mut self, job: Job, delay: Duration) {
        let sleep = self.clock.sleep(delay);
        self.timers.push(Box::pin(async move {
            sleep.await;
            Timer::Retry(job)
        }));
    }

    /// Gives up everything still held (shutdown deadline): counted and reported.
    fn abandon_all(&mut self) -> Vec<Abandoned> {
        let mut abandoned = Vec::new();
        for (subject, lookup) in std::mem::take(&mut self.lookups) {
            for item in lookup.items {
                self.metrics
                    .count_dropped(item.reason, DropCause::Shutdown, 1);
                self.ledger.complete(item.seq);
                abandoned.push(Abandoned {
                    reason: item.reason,
                    claim: subject.to_string(),
                    message: item.message,
                    count: 1,
                });
            }
        }
        for (key, series) in std::mem::take(&mut self.busy) {
            let mut held = series.in_flight;
            held.append(series.pending);
            let n = held.len();
            self.metrics
                .count_dropped(key.reason, DropCause::Shutdown, n as u64);
            abandoned.push(Abandoned {
                reason: key.reason,
                claim: format!("claim {}", series.claim.name),
                message: key.message.to_string(),
                count: n,
            });
            self.ledger.finish(held);
        }
        self.waiting.clear();
        self.waiting_order.clear();
        abandoned
    }
}

impl Series {
    /// The `count` the write of what is in flight sets.
    fn target(&self) -> i32 {
        self.stored
            .count
            .saturating_add(i32::try_from(self.in_flight.len()).unwrap_or(i32::MAX))
    }
}

/// Puts the batch in flight back in front of the pending posts.
fn put_back_in_flight(series: &mut Series) {
    let mut batch = std::mem::take(&mut series.in_flight);
    batch.append(std::mem::take(&mut series.pending));
    series.pending = batch;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed part of each entry the worker keeps per series, per claim and per post; the
    /// README's bound on the poster's state (section "What the poster guarantees") is built
    /// from these figures, so a change that grows them must update it.
    #[test]
    fn state_entries_stay_within_the_documented_sizes() {
        let sizes = [
            ("SeriesKey", size_of::<SeriesKey>(), 40),
            ("Stored", size_of::<Stored>(), 88),
            ("Series", size_of::<Series>(), 232),
            ("TokenBucket", size_of::<TokenBucket>(), 32),
            ("Item", size_of::<Item>(), 56),
            ("Mark", size_of::<Mark>(), 24),
            ("Posted", size_of::<Posted>(), 96),
        ];
        for (name, size, bound) in sizes {
            eprintln!("{name}: {size} bytes");
            assert!(
                size <= bound,
                "{name} is {size} bytes, documented as {bound}"
            );
        }
    }
}
