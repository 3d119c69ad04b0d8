//! The runner's view of the Events the driver wrote.
//!
//! Embedded: the fake server's watch over every namespace (every create and patch the server
//! stored, in write order, with the count it stored). External: listing, keeping the count
//! last seen of each Event (several writes of one Event during one step show as one entry
//! with the last count).

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};

use super::runner::RunError;
use super::transcript::WrittenEvent;
use fake_apiserver::FakeCluster;

/// Where written events are read from.
pub(crate) enum EventFeed {
    /// The fake server's watch stream over every namespace (every stored write, in order).
    Watch(
        http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>,
        Vec<u8>,
    ),
    /// Listing (external mode): new Events and count changes since the last listing.
    Listing {
        client: kube::Client,
        namespaces: Vec<String>,
        seen: BTreeMap<(String, String), i32>,
    },
}

impl EventFeed {
    /// Watches every Event written on `cluster` from now on.
    pub(crate) async fn watch(cluster: &FakeCluster) -> Result<Self, RunError> {
        let rv = cluster.server().resource_version();
        let uri = format!("/api/v1/events?watch=true&resourceVersion={rv}&timeoutSeconds=86400");
        let request = http::Request::get(uri)
            .body(Bytes::new())
            .map_err(|e| RunError::Setup(format!("cannot build the event watch: {e}")))?;
        let response = cluster.server().handle(request).await;
        if !response.status().is_success() {
            return Err(RunError::Setup(format!(
                "the fake API server refused the event watch: {}",
                response.status()
            )));
        }
        Ok(EventFeed::Watch(response.into_body(), Vec::new()))
    }

    /// Lists the Events of `namespaces`; what is there already is not this run's.
    pub(crate) async fn listing(
        client: kube::Client,
        namespaces: Vec<String>,
    ) -> Result<Self, RunError> {
        let mut feed = EventFeed::Listing {
            client,
            namespaces,
            seen: BTreeMap::new(),
        };
        // What is already there (an earlier run with --keep) is not this run's.
        let _ = feed.drain().await;
        Ok(feed)
    }

    /// The writes since the last call, in order.
    pub(crate) async fn drain(&mut self) -> Vec<WrittenEvent> {
        match self {
            EventFeed::Watch(body, buffer) => {
                loop {
                    let frame = {
                        let next = body.frame();
                        futures::pin_mut!(next);
                        match futures::poll!(next) {
                            std::task::Poll::Ready(Some(Ok(frame))) => frame,
                            _ => break,
                        }
                    };
                    if let Ok(data) = frame.into_data() {
                        buffer.extend_from_slice(&data);
                    }
                }
                let mut written = Vec::new();
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&line) else {
                        continue;
                    };
                    let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or("");
                    if kind != "ADDED" && kind != "MODIFIED" {
                        continue;
                    }
                    if let Some(event) = value
                        .get("object")
                        .cloned()
                        .and_then(|o| serde_json::from_value::<Event>(o).ok())
                    {
                        written.push(written_event(&event));
                    }
                }
                written
            }
            EventFeed::Listing {
                client,
                namespaces,
                seen,
            } => {
                let mut written = Vec::new();
                for namespace in namespaces.iter() {
                    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
                    let Ok(list) = api.list(&ListParams::default()).await else {
                        continue;
                    };
                    let mut items = list.items;
                    items.sort_by_key(|e| {
                        (
                            e.last_timestamp.as_ref().map(|t| t.0),
                            e.metadata.name.clone(),
                        )
                    });
                    for event in items {
                        let key = (
                            namespace.clone(),
                            event.metadata.name.clone().unwrap_or_default(),
                        );
                        let count = event.count.unwrap_or(1);
                        if seen.get(&key) != Some(&count) {
                            seen.insert(key, count);
                            written.push(written_event(&event));
                        }
                    }
                }
                written
            }
        }
    }
}

fn written_event(event: &Event) -> WrittenEvent {
    WrittenEvent {
        event_type: event.type_.clone().unwrap_or_default(),
        reason: event.reason.clone().unwrap_or_default(),
        namespace: event.involved_object.namespace.clone().unwrap_or_default(),
        name: event.involved_object.name.clone().unwrap_or_default(),
        message: event.message.clone().unwrap_or_default(),
        count: event.count.unwrap_or(1),
    }
}
