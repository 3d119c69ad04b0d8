//! Shared test support: the tower-test mock in front of the fake cluster, and log capture.

#![allow(dead_code)]

pub mod mock_api;

use std::sync::Arc;

use csi_events::clock::VirtualClock;
use csi_events::{EventPoster, PosterConfig};

mod logs;
pub use logs::Logs;

#[allow(unused_imports)]
pub use csi_events::poster::WARN_INTERVAL;

/// Where the virtual clock starts in every test.
pub const START: &str = "2026-01-01T00:00:00Z";

/// A poster on a virtual clock, writing through the mock to the fake cluster, with its logs
/// captured.
pub struct Harness {
    pub poster: EventPoster,
    pub mock: mock_api::MockApi,
    pub clock: VirtualClock,
    pub logs: Logs,
    _subscriber: tracing::subscriber::DefaultGuard,
}

/// Builds a harness; `configure` adjusts the poster's configuration.
pub fn harness(configure: impl FnOnce(PosterConfig) -> PosterConfig) -> Harness {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let clock = VirtualClock::new(START.parse().expect("start time"));
    let (client, mock) = mock_api::MockApi::start();
    let config = configure(
        PosterConfig::default()
            .instance("test-host")
            .clock(Arc::new(clock.clone())),
    );
    Harness {
        poster: EventPoster::new(client, config),
        mock,
        clock,
        logs,
        _subscriber: guard,
    }
}

/// Lets spawned tasks (the worker, the mock server) run until they wait on something.
pub async fn settle() {
    csi_events::clock::settle().await;
}
