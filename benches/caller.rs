//! `caller`: what one post costs its caller while every API request takes 20 ms.
//!
//! csi-events' `post_*` against kube-rs's `Recorder::publish` (which awaits its request), both
//! against an in-process fake cluster that adds 20 ms of (real) latency to every request.
//! Figures: caller-side time per post, median and p99, and the ratio to the Recorder.
//!
//! Over HTTP (the fake served on loopback, the same 20 ms per request): csi-events with kube's
//! own client beside client-go's `tools/record` and `tools/events` in the Go `event-peer`
//! (`peers/`; needs `go`), whose posts are measured inside the Go process.
//!
//! `cargo bench --bench caller [-- --posts 200 --json]`

#[path = "support/mod.rs"]
mod support;

#[path = "support/client_go.rs"]
mod client_go;
#[path = "../tests/support/go_peers.rs"]
mod go_peers;

use std::time::{Duration, Instant};

use csi_events::{ClaimName, EventPoster, PosterConfig};
use fake_apiserver::control::Fault;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use support::{Figure, arg, cluster_with_claims, report};

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let posts = arg("--posts", 200);
    let latency = Duration::from_millis(20);

    let (cluster, _) = cluster_with_claims(1).await;
    cluster.faults().add(Fault::any().latency(latency));
    let poster = EventPoster::new(cluster.client(), PosterConfig::default().instance("bench"));
    let claim = ClaimName::new("vms", "disk-0");
    let mut ours = Vec::with_capacity(posts);
    for i in 0..posts {
        let started = Instant::now();
        poster.post_mount_failure(
            Some(&claim),
            &"pvc-0".into(),
            &"node-a".into(),
            &format!("attempt {i}"),
        );
        ours.push(started.elapsed());
    }

    let (cluster, references) = cluster_with_claims(1).await;
    cluster.faults().add(Fault::any().latency(latency));
    let recorder = Recorder::new(
        cluster.client(),
        Reporter::from("rds-csi-controller".to_string()),
    );
    let mut theirs = Vec::with_capacity(posts);
    for i in 0..posts {
        let event = Event {
            type_: EventType::Warning,
            reason: "MountFailure".into(),
            note: Some(format!("attempt {i}")),
            action: "Mount".into(),
            secondary: None,
        };
        let started = Instant::now();
        let _ = recorder.publish(&event, &references[0]).await;
        theirs.push(started.elapsed());
    }

    // Over HTTP: csi-events, then client-go's two recorders.
    let (cluster, _) = cluster_with_claims(1).await;
    cluster.faults().add(Fault::any().latency(latency));
    let (server, _) = client_go::serve(&cluster, "caller-csi-events").await;
    let poster = EventPoster::new(
        client_go::http_client(&server),
        PosterConfig::default().instance("bench"),
    );
    let mut ours_http = Vec::with_capacity(posts);
    for i in 0..posts {
        let started = Instant::now();
        poster.post_mount_failure(
            Some(&claim),
            &"pvc-0".into(),
            &"node-a".into(),
            &format!("attempt {i}"),
        );
        ours_http.push(started.elapsed());
    }
    poster.flush().await;
    server.shutdown().await;
    let mut go_rows = Vec::new();
    for recorder in ["record", "events"] {
        let (cluster, _) = cluster_with_claims(1).await;
        cluster.faults().add(Fault::any().latency(latency));
        let args = [
            "--workload".to_string(),
            "caller".into(),
            "--posts".into(),
            posts.to_string(),
        ];
        let (result, server) = client_go::run_event_peer(&cluster, recorder, &args, || {}).await;
        server.shutdown().await;
        go_rows.push((format!("http/client-go-{recorder}"), result));
    }

    let (our_median, our_p99) = (percentile(&mut ours, 0.5), percentile(&mut ours, 0.99));
    let (their_median, their_p99) = (percentile(&mut theirs, 0.5), percentile(&mut theirs, 0.99));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let figures = vec![
        Figure {
            bench: "caller",
            variant: "csi-events".into(),
            metric: "post_median",
            value: us(our_median),
            unit: "us",
        },
        Figure {
            bench: "caller",
            variant: "csi-events".into(),
            metric: "post_p99",
            value: us(our_p99),
            unit: "us",
        },
        Figure {
            bench: "caller",
            variant: "kube-rs-recorder".into(),
            metric: "publish_median",
            value: us(their_median),
            unit: "us",
        },
        Figure {
            bench: "caller",
            variant: "kube-rs-recorder".into(),
            metric: "publish_p99",
            value: us(their_p99),
            unit: "us",
        },
        Figure {
            bench: "caller",
            variant: "csi-events".into(),
            metric: "median_vs_recorder",
            value: their_median.as_secs_f64() / our_median.as_secs_f64().max(1e-9),
            unit: "x faster",
        },
        Figure {
            bench: "caller",
            variant: "csi-events".into(),
            metric: "p99_vs_recorder",
            value: their_p99.as_secs_f64() / our_p99.as_secs_f64().max(1e-9),
            unit: "x faster",
        },
    ];
    let mut figures = figures;
    let (http_median, http_p99) = (
        percentile(&mut ours_http, 0.5),
        percentile(&mut ours_http, 0.99),
    );
    let row = |variant: &str, metric: &'static str, value: f64, unit: &'static str| Figure {
        bench: "caller",
        variant: variant.into(),
        metric,
        value,
        unit,
    };
    figures.push(row("http/csi-events", "post_median", us(http_median), "us"));
    figures.push(row("http/csi-events", "post_p99", us(http_p99), "us"));
    for (variant, result) in &go_rows {
        figures.push(row(variant, "post_median", result.post_median_us, "us"));
        figures.push(row(variant, "post_p99", result.post_p99_us, "us"));
        figures.push(row(
            variant,
            "api_requests",
            result.sink_calls as f64,
            "requests",
        ));
        figures.push(row(
            "http/csi-events",
            if variant.ends_with("record") {
                "median_vs_client_go_record"
            } else {
                "median_vs_client_go_events"
            },
            result.post_median_us / us(http_median).max(1e-3),
            "x faster",
        ));
    }
    report(&figures);
}
