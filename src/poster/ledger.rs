//! The worker's flush and queue-slot bookkeeping, in one place.
//!
//! Every accepted post has an arrival number. A post holds a queue slot (counted in
//! `admitted`, which the poster handles read for `queued()` and the queue bound) until it is
//! finished, unless it is *folded* into a series waiting for a spam-filter token: then it is
//! only a count (`folded`, read for `waiting()`). A flush waits until no post that arrived
//! before it is *watched*: a post is watched while it can finish without the clock moving,
//! and not while it waits out a retry delay or for a token.
//!
//! ```text
//! let mut ledger = Ledger::new(admitted, folded);
//! ledger.watch(7);            // post 7 is on its way to the server
//! ledger.flush(8, reply);     // a flush after it
//! ledger.complete(7);         // written: slot back, not watched
//! ledger.answer_flushes();    // the flush is answered
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::Timestamp;
use tokio::sync::oneshot;

/// A post counted in a series: its arrival number and its instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    pub(crate) seq: u64,
    pub(crate) at: Timestamp,
}

/// Posts of a series taken together (not yet written, or in one write).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Posts holding a queue slot, oldest first.
    pub(crate) marks: Vec<Mark>,
    /// Posts folded while their series waited for a token: only counted, no queue slot.
    pub(crate) folded: usize,
    /// The oldest folded post: it stands for all of them in flush and first-posted order.
    pub(crate) folded_first: Option<Mark>,
}

impl Batch {
    pub(crate) fn len(&self) -> usize {
        self.marks.len() + self.folded
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn oldest(&self) -> Option<Mark> {
        self.marks
            .iter()
            .copied()
            .chain(self.folded_first.filter(|_| self.folded > 0))
            .min_by_key(|m| m.seq)
    }

    /// The arrival numbers a flush waits for while this batch is being written.
    pub(crate) fn active_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.marks
            .iter()
            .map(|m| m.seq)
            .chain(self.folded_first.filter(|_| self.folded > 0).map(|m| m.seq))
    }

    /// Appends `later` (posted after this batch's posts).
    pub(crate) fn append(&mut self, later: Batch) {
        self.marks.extend(later.marks);
        self.folded += later.folded;
        self.folded_first = match (self.folded_first, later.folded_first) {
            (Some(a), Some(b)) => Some(if a.seq <= b.seq { a } else { b }),
            (a, b) => a.or(b),
        };
    }
}

/// Queue slots, folded counts, the posts a flush waits for, and the flushes waiting.
pub(crate) struct Ledger {
    /// Queue slots held (posts accepted and not finished); shared with the handles.
    admitted: Arc<AtomicUsize>,
    /// Posts not finished that hold no queue slot; shared with the handles.
    folded: Arc<AtomicUsize>,
    /// Posts that are neither finished nor waiting on a retry delay or a token.
    watched: BTreeSet<u64>,
    /// Flushes waiting, with the first arrival number after them.
    flushes: Vec<(u64, oneshot::Sender<()>)>,
}

impl Ledger {
    pub(crate) fn new(admitted: Arc<AtomicUsize>, folded: Arc<AtomicUsize>) -> Self {
        Self {
            admitted,
            folded,
            watched: BTreeSet::new(),
            flushes: Vec::new(),
        }
    }

    /// Flushes wait for post `seq`.
    pub(crate) fn watch(&mut self, seq: u64) {
        self.watched.insert(seq);
    }

    /// Flushes wait for these posts.
    pub(crate) fn watch_all(&mut self, seqs: impl IntoIterator<Item = u64>) {
        self.watched.extend(seqs);
    }

    /// Flushes stop waiting for post `seq` (it waits on the clock now).
    pub(crate) fn unwatch(&mut self, seq: u64) {
        self.watched.remove(&seq);
    }

    /// Flushes stop waiting for these posts.
    pub(crate) fn unwatch_all(&mut self, seqs: impl IntoIterator<Item = u64>) {
        for seq in seqs {
            self.watched.remove(&seq);
        }
    }

    /// Post `seq`, holding a queue slot, is finished: its slot is given back.
    pub(crate) fn complete(&mut self, seq: u64) {
        self.watched.remove(&seq);
        self.admitted.fetch_sub(1, Ordering::AcqRel);
    }

    /// A post never seen by the worker's state (still in the channel at stop) gives its slot
    /// back.
    pub(crate) fn return_slot(&self) {
        self.admitted.fetch_sub(1, Ordering::AcqRel);
    }

    /// A post stops holding a queue slot: it is folded into a waiting series.
    pub(crate) fn fold(&mut self) {
        self.admitted.fetch_sub(1, Ordering::AcqRel);
        self.folded.fetch_add(1, Ordering::AcqRel);
    }

    /// Every post of `batch` is finished (written, dropped): flushes stop waiting for them,
    /// and their queue slots or folded counts are given back.
    pub(crate) fn finish(&mut self, batch: Batch) {
        for mark in batch.marks {
            self.complete(mark.seq);
        }
        if batch.folded > 0 {
            if let Some(first) = batch.folded_first {
                self.watched.remove(&first.seq);
            }
            self.folded.fetch_sub(batch.folded, Ordering::AcqRel);
        }
    }

    /// Finishes the first `n` posts of `in_flight` (an earlier attempt of its write landed
    /// with them): folded posts first, then the oldest marks.
    pub(crate) fn finish_first(&mut self, in_flight: &mut Batch, n: usize) {
        let folded = n.min(in_flight.folded);
        let marks = (n - folded).min(in_flight.marks.len());
        let landed = Batch {
            marks: in_flight.marks.drain(..marks).collect(),
            folded,
            folded_first: None,
        };
        in_flight.folded -= folded;
        if in_flight.folded == 0
            && let Some(first) = in_flight.folded_first.take()
        {
            self.watched.remove(&first.seq);
        }
        self.finish(landed);
    }

    /// A flush asked for when `next_seq` is the next arrival number.
    pub(crate) fn flush(&mut self, next_seq: u64, reply: oneshot::Sender<()>) {
        self.flushes.push((next_seq, reply));
    }

    /// Answers every flush no watched post arrived before.
    pub(crate) fn answer_flushes(&mut self) {
        let oldest_watched = self.watched.first().copied();
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flushes)
            .into_iter()
            .partition(|(barrier, _)| oldest_watched.is_none_or(|seq| seq >= *barrier));
        self.flushes = waiting;
        for (_, reply) in done {
            let _ = reply.send(());
        }
    }

    /// Answers every flush (the worker stops).
    pub(crate) fn answer_all(&mut self) {
        for (_, reply) in self.flushes.drain(..) {
            let _ = reply.send(());
        }
    }
}
