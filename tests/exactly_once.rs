//! Exactly once (`docs/events.md` §5): under any fault schedule that ends, every event not dropped for
//! a counted cause appears exactly once in the API server, as one Event object with the right
//! `count`. Random schedules of posts, faults (5xx, 429 with Retry-After, dropped connections,
//! writes whose answer is lost) and clock moves, checked against the mock server's store, with
//! the spam filter **on** (a random small burst and refill, so posts do wait for tokens).
//!
//! A second property shrinks the series cache to two entries: waiting series are then evicted
//! (dropped, counted `rate_limited`) and evicted written series start new Events, so the check
//! is that every post is in a `count` or in the `rate_limited` counter, nothing else.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use csi_events::metrics::DropCause;
use csi_events::{ClaimName, RetryPolicy};
use http::Method;
use proptest::prelude::*;
use support::mock_api::Action;

const CLAIMS: [(&str, &str); 2] = [("disk-a", "uid-a"), ("disk-b", "uid-b")];
const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];

#[derive(Debug, Clone)]
enum Step {
    /// A VolumeDetached post on claim `.0` naming node `.1` (three distinct messages per claim).
    Post(usize, usize),
    Fault(Method, Action, usize),
    Advance(u64),
    Flush,
}

fn step() -> impl Strategy<Value = Step> {
    let method = prop_oneof![Just(Method::POST), Just(Method::PATCH), Just(Method::GET)];
    let action = prop_oneof![
        Just(Action::Status(500, None)),
        Just(Action::Status(503, None)),
        (1u64..30).prop_map(|secs| Action::Status(429, Some(secs))),
        Just(Action::Drop),
        Just(Action::ApplyThenDrop),
    ];
    prop_oneof![
        4 => (0..CLAIMS.len(), 0..NODES.len()).prop_map(|(c, n)| Step::Post(c, n)),
        2 => (method, action, 1usize..4).prop_map(|(m, a, t)| Step::Fault(m, a, t)),
        1 => (0u64..45).prop_map(Step::Advance),
        1 => Just(Step::Flush),
    ]
}

/// The spam filter of a run: (burst, refill in seconds).
fn filter() -> impl Strategy<Value = (u32, u64)> {
    (1u32..4, prop_oneof![Just(30u64), Just(60), Just(300)])
}

fn run(steps: Vec<Step>, (burst, refill): (u32, u64), cache: usize) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let h = support::harness(|mut c| {
            c.cache_size = std::num::NonZeroUsize::new(cache).expect("non-zero");
            c.spam_filter(burst, Duration::from_secs(refill))
                .retry(RetryPolicy {
                    max_attempts: 1_000,
                    ..RetryPolicy::default()
                })
        });
        for (name, uid) in CLAIMS {
            h.mock.add_claim("vms", name, uid);
        }
        let mut posted: BTreeMap<(usize, usize), i64> = BTreeMap::new();
        for step in steps {
            match step {
                Step::Post(c, n) => {
                    h.poster.post_volume_detached(
                        Some(&ClaimName::new("vms", CLAIMS[c].0)),
                        &"pvc-1".into(),
                        &NODES[n].into(),
                    );
                    *posted.entry((c, n)).or_default() += 1;
                }
                Step::Fault(method, action, times) => h.mock.fault(method, "/", action, times),
                Step::Advance(secs) => h.clock.advance(Duration::from_secs(secs)).await,
                Step::Flush => h.poster.flush().await,
            }
        }
        // The schedule ends: no more faults; let every backoff run out and every waiting post
        // get its token.
        h.mock.clear_faults();
        for _ in 0..2_000 {
            h.poster.flush().await;
            if h.poster.queued() + h.poster.waiting() == 0 {
                break;
            }
            h.clock.advance(Duration::from_secs(31)).await;
        }
        h.poster.flush().await;

        prop_assert_eq!(h.poster.queued(), 0);
        prop_assert_eq!(h.poster.waiting(), 0);
        for cause in [
            DropCause::QueueFull,
            DropCause::RetriesExhausted,
            DropCause::Rejected,
            DropCause::Shutdown,
        ] {
            prop_assert_eq!(h.poster.metrics().dropped_total(cause), 0, "{:?}", cause);
        }
        let stored = h.mock.events("vms");
        if cache < 16 {
            // Evictions happen: every post is in a count or counted rate_limited.
            let counted: i64 = stored
                .iter()
                .map(|e| e["count"].as_i64().unwrap_or(0))
                .sum();
            let limited = h.poster.metrics().dropped_total(DropCause::RateLimited) as i64;
            prop_assert_eq!(counted + limited, posted.values().sum::<i64>());
            return Ok(());
        }
        prop_assert_eq!(h.poster.metrics().dropped_total(DropCause::RateLimited), 0);
        let mut seen: BTreeMap<(usize, usize), i64> = BTreeMap::new();
        for event in &stored {
            let uid = event["involvedObject"]["uid"].as_str().unwrap_or_default();
            let c = CLAIMS
                .iter()
                .position(|(_, u)| *u == uid)
                .expect("a known claim uid");
            let message = event["message"].as_str().unwrap_or_default();
            let n = NODES
                .iter()
                .position(|node| message == format!("[pvc-1]: Detached from node {node}"))
                .expect("a known message");
            prop_assert!(
                seen.insert((c, n), event["count"].as_i64().unwrap_or(0))
                    .is_none(),
                "two Event objects for claim {} node {}: {:#?}",
                c,
                n,
                stored
            );
        }
        prop_assert_eq!(seen, posted);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_event_lands_exactly_once_with_its_count_under_the_spam_filter(
        steps in proptest::collection::vec(step(), 1..40),
        filter in filter(),
    ) {
        run(steps, filter, 4096)?;
    }

    #[test]
    fn with_a_tiny_series_cache_every_post_is_in_a_count_or_counted_rate_limited(
        steps in proptest::collection::vec(step(), 1..40),
        filter in filter(),
    ) {
        run(steps, filter, 2)?;
    }
}
