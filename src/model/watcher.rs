//! The production node watcher: `kube::runtime::watcher` over Nodes, calling
//! [`Controller::node_added`] and [`Controller::node_deleted`].
//!
//! Every (re)list is a full picture: a node the controller knew (or that a tracked volume is
//! attached to) and that is missing from the relist was deleted while the watch was down, and
//! is reconciled as deleted. Transient watch errors are retried with kube-runtime's default
//! backoff; an error that retrying cannot fix (401, 403, 404: no credentials, no RBAC, no Node
//! API) ends the watcher with a [`WatchError`].

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use super::Controller;
use crate::ids::NodeName;

/// Why the node watcher stopped.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The API server refuses the watch in a way retrying cannot fix.
    #[error(
        "watching nodes failed for good: {source}; the controller needs RBAC `list` and `watch` on nodes"
    )]
    Refused {
        /// The watcher's error.
        #[source]
        source: watcher::Error,
    },
}

/// Production node watcher: `kube::runtime::watcher` over Nodes calling `node_added` /
/// `node_deleted` (a node missing from a relist counts as deleted). Runs until the stream ends
/// or errors fatally.
///
/// ```no_run
/// # async fn demo(client: kube::Client, controller: csi_events::model::Controller) {
/// tokio::spawn(csi_events::model::watch_nodes(client, controller));
/// # }
/// ```
pub async fn watch_nodes(client: kube::Client, controller: Controller) -> Result<(), WatchError> {
    let nodes: Api<Node> = Api::all(client);
    let mut stream = watcher::watcher(nodes, watcher::Config::default())
        .default_backoff()
        .into_stream()
        .boxed();
    let mut relisted: Option<BTreeSet<NodeName>> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(Event::Init) => relisted = Some(BTreeSet::new()),
            Ok(Event::InitApply(node)) => {
                if let Some(name) = node.metadata.name {
                    let name = NodeName::from(name);
                    controller.node_added(&name);
                    relisted.get_or_insert_with(BTreeSet::new).insert(name);
                }
            }
            Ok(Event::InitDone) => {
                // A relist always starts with Init; without one there is no full picture.
                let Some(present) = relisted.take() else {
                    continue;
                };
                for gone in controller.known_nodes().difference(&present) {
                    tracing::info!(node = %gone, "node missing from the relist: reconciling it as deleted");
                    controller.node_deleted(gone);
                }
            }
            Ok(Event::Apply(node)) => {
                if let Some(name) = node.metadata.name {
                    controller.node_added(&NodeName::from(name));
                }
            }
            Ok(Event::Delete(node)) => {
                if let Some(name) = node.metadata.name {
                    tracing::info!(node = %name, "node deleted: reconciling its volumes");
                    controller.node_deleted(&NodeName::from(name));
                }
            }
            Err(error) if is_fatal(&error) => return Err(WatchError::Refused { source: error }),
            Err(error) => tracing::warn!(%error, "watching nodes: retrying after an error"),
        }
    }
    Ok(())
}

fn is_fatal(error: &watcher::Error) -> bool {
    let status = match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => match e {
            kube::Error::Api(status) => Some(status.code),
            _ => None,
        },
        watcher::Error::WatchError(status) => Some(status.code),
        watcher::Error::NoResourceVersion => None,
    };
    matches!(status, Some(401 | 403 | 404))
}

impl Controller {
    /// Every node the controller knows to exist or finds in an attachment.
    pub(crate) fn known_nodes(&self) -> BTreeSet<NodeName> {
        let locked = self.inner.lock();
        let mut known = locked.state.nodes.clone();
        for volume in locked.state.volumes.values() {
            known.extend(volume.nodes.iter().cloned());
        }
        known
    }
}
