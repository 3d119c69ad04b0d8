//! The CSI services over real gRPC on a unix socket, called with tonic clients as the
//! external-attacher calls them (docs/csi.md): every row of the publish error table, the
//! unpublish rules, idempotency, concurrent calls on one volume, the access-mode mapping, the
//! claim taken from the volume context, Identity, and RPCs routed to a wrapped service.
//! Every event is read back from the in-process fake cluster.

mod model_support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use csi_events::csi::proto::controller::controller_client::ControllerClient;
use csi_events::csi::proto::identity::identity_client::IdentityClient;
use csi_events::csi::proto::node::node_client::NodeClient;
use csi_events::csi::proto::volume_capability::access_mode::Mode;
use csi_events::csi::proto::volume_capability::{AccessMode, AccessType, MountVolume};
use csi_events::csi::proto::*;
use csi_events::csi::{
    AnyVolume, CsiConfig, CsiDriver, Delegate, PersistentVolumes, Storage, connect_unix, serve_unix,
};
use csi_events::{NodeName, RpcError, VolumeId};
use model_support::{Rig, rig, volume_yaml};
use tokio::sync::Semaphore;
use tonic::Code;
use tonic::transport::{Channel, Server};

const N: &str = "Normal";
const W: &str = "Warning";

static SOCKETS: AtomicUsize = AtomicUsize::new(0);

fn socket_path() -> PathBuf {
    let n = SOCKETS.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "csi-events-test-{}-{n}/csi.sock",
        std::process::id()
    ))
}

/// The rig's controller served over a unix socket, with `storage`.
struct Wire {
    rig: Rig,
    channel: Channel,
    _server: tokio::task::JoinHandle<()>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Wire {
    fn controller(&self) -> ControllerClient<Channel> {
        ControllerClient::new(self.channel.clone())
    }
}

async fn serve_driver<S: Storage>(
    driver: CsiDriver<S>,
    router_controller: bool,
) -> (
    Channel,
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let path = socket_path();
    let mut builder = Server::builder();
    let router = builder.add_service(driver.identity_server());
    let router = if router_controller {
        router.add_service(driver.controller_server())
    } else {
        router
    };
    let router = router.add_optional_service(driver.node_server());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serve_path = path.clone();
    let server = tokio::spawn(async move {
        serve_unix(router, &serve_path, async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    let channel = connect_with_retry(&path).await;
    (channel, server, stop)
}

async fn connect_with_retry(path: &std::path::Path) -> Channel {
    for _ in 0..200 {
        if path.exists()
            && let Ok(channel) = connect_unix(path).await
        {
            return channel;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the CSI socket {} never came up", path.display());
}

async fn wire(volumes: &str) -> Wire {
    let rig = rig(volumes).await;
    let storage = PersistentVolumes::new(rig.cluster.client());
    storage.synced().await;
    let driver = CsiDriver::new(
        CsiConfig::new("rds.csi.srvlab.io").clock(Arc::new(rig.clock.clone())),
        storage,
    );
    driver.set_controller(rig.controller.clone());
    let (channel, server, stop) = serve_driver(driver, true).await;
    Wire {
        rig,
        channel,
        _server: server,
        _stop: stop,
    }
}

fn rwx() -> String {
    (1..=2)
        .map(|i| volume_yaml(i, "ReadWriteMany", ""))
        .collect()
}

fn publish(volume: &str, node: &str, mode: Mode) -> ControllerPublishVolumeRequest {
    ControllerPublishVolumeRequest {
        volume_id: volume.to_owned(),
        node_id: node.to_owned(),
        volume_capability: Some(VolumeCapability::block(mode)),
        readonly: false,
        secrets: HashMap::new(),
        volume_context: HashMap::from([
            (
                "csi.storage.k8s.io/pvc/namespace".to_owned(),
                "vms".to_owned(),
            ),
            (
                "csi.storage.k8s.io/pvc/name".to_owned(),
                format!("disk-{}", &volume[4..]),
            ),
        ]),
    }
}

fn unpublish(volume: &str, node: &str) -> ControllerUnpublishVolumeRequest {
    ControllerUnpublishVolumeRequest {
        volume_id: volume.to_owned(),
        node_id: node.to_owned(),
        secrets: HashMap::new(),
    }
}

async fn refused(
    client: &mut ControllerClient<Channel>,
    request: ControllerPublishVolumeRequest,
) -> (Code, String) {
    let status = client
        .controller_publish_volume(request)
        .await
        .expect_err("the publish is refused");
    (status.code(), status.message().to_owned())
}

// ---------------------------------------------------------------- the error table

#[tokio::test]
async fn publish_request_rows_are_invalid_argument_in_table_order() {
    let w = wire(&rwx()).await;
    let mut c = w.controller();
    let base = publish("pvc-1", "node-a", Mode::SingleNodeWriter);
    let cases: Vec<(ControllerPublishVolumeRequest, &str)> = vec![
        (
            ControllerPublishVolumeRequest {
                volume_id: String::new(),
                node_id: String::new(),
                volume_capability: None,
                ..base.clone()
            },
            "volume_id is required",
        ),
        (
            ControllerPublishVolumeRequest {
                node_id: String::new(),
                volume_capability: None,
                ..base.clone()
            },
            "node_id is required",
        ),
        (
            ControllerPublishVolumeRequest {
                volume_capability: None,
                ..base.clone()
            },
            "volume_capability is required",
        ),
        (
            ControllerPublishVolumeRequest {
                volume_capability: Some(VolumeCapability {
                    access_type: None,
                    access_mode: Some(AccessMode {
                        mode: Mode::SingleNodeWriter as i32,
                    }),
                }),
                ..base.clone()
            },
            "volume_capability is required",
        ),
        (
            publish("pvc-1", "node-a", Mode::MultiNodeReaderOnly),
            "access mode MULTI_NODE_READER_ONLY is not supported",
        ),
        (
            publish("pvc-1", "node-a", Mode::SingleNodeReaderOnly),
            "access mode SINGLE_NODE_READER_ONLY is not supported",
        ),
        (
            publish("pvc-1", "node-a", Mode::MultiNodeSingleWriter),
            "access mode MULTI_NODE_SINGLE_WRITER is not supported",
        ),
        (
            publish("pvc-1", "node-a", Mode::Unknown),
            "access mode UNKNOWN is not supported",
        ),
        (
            ControllerPublishVolumeRequest {
                volume_capability: Some(VolumeCapability {
                    access_type: Some(AccessType::Mount(MountVolume::default())),
                    access_mode: Some(AccessMode {
                        mode: Mode::MultiNodeMultiWriter as i32,
                    }),
                }),
                ..base.clone()
            },
            "MULTI_NODE_MULTI_WRITER needs block access: a filesystem cannot be written from two nodes",
        ),
        (
            ControllerPublishVolumeRequest {
                readonly: true,
                ..base.clone()
            },
            "readonly publish is not supported",
        ),
    ];
    for (request, message) in cases {
        assert_eq!(
            refused(&mut c, request).await,
            (Code::InvalidArgument, message.to_owned())
        );
    }
    assert!(
        w.rig.controller.volumes().is_empty(),
        "nothing reached the model"
    );
    w.rig.expect_events(&[]).await;
}

#[tokio::test]
async fn publish_of_a_volume_without_a_pv_is_not_found() {
    let w = wire(&rwx()).await;
    let mut c = w.controller();
    assert_eq!(
        refused(&mut c, publish("pvc-9", "node-a", Mode::SingleNodeWriter)).await,
        (Code::NotFound, "volume pvc-9 not found".to_owned())
    );
    w.rig.expect_events(&[]).await;
}

#[tokio::test]
async fn publish_to_an_unknown_node_is_the_models_not_found() {
    let w = wire(&rwx()).await;
    let mut c = w.controller();
    assert_eq!(
        refused(&mut c, publish("pvc-1", "node-x", Mode::SingleNodeWriter)).await,
        (Code::NotFound, "node node-x not found".to_owned())
    );
}

#[tokio::test]
async fn publish_with_the_other_access_mode_on_the_same_node_is_already_exists() {
    let w = wire(&rwx()).await;
    let mut c = w.controller();
    c.controller_publish_volume(publish("pvc-1", "node-a", Mode::MultiNodeMultiWriter))
        .await
        .expect("attach RWX");
    assert_eq!(
        refused(&mut c, publish("pvc-1", "node-a", Mode::SingleNodeWriter)).await,
        (
            Code::AlreadyExists,
            "volume pvc-1 is published to node node-a as RWX; this request asks for RWO".to_owned()
        )
    );
    c.controller_publish_volume(publish("pvc-2", "node-a", Mode::SingleNodeWriter))
        .await
        .expect("attach RWO");
    assert_eq!(
        refused(
            &mut c,
            publish("pvc-2", "node-a", Mode::MultiNodeMultiWriter)
        )
        .await,
        (
            Code::AlreadyExists,
            "volume pvc-2 is published to node node-a as RWO; this request asks for RWX".to_owned()
        )
    );
}

#[tokio::test]
async fn rwo_publish_to_another_node_is_failed_precondition_naming_the_holder() {
    let w = wire(&rwx()).await;
    let mut c = w.controller();
    c.controller_publish_volume(publish("pvc-1", "node-a", Mode::SingleNodeWriter))
        .await
        .expect("attach");
    assert_eq!(
        refused(&mut c, publish("pvc-1", "node-b", Mode::SingleNodeWriter)).await,
        (
            Code::FailedPrecondition,
            "Volume pvc-1 already attached to node node-a. For multi-node access, use RWX with block volumes.".to_owned()
        )
    );
    w.rig
        .expect_events(&[
            (N, "VolumeAttached", "[pvc-1]: Attached to node node-a (duration: 0s)", "disk-1"),
            (
                W,
                "AttachmentConflict",
                "[pvc-1]: Attachment to node node-b rejected - volume already attached to node node-a. Delete the pod on node-a to release the volume.",
                "disk-1",
            ),
        ])
        .await;
}

// ---------------------------------------------------------------- mapping, context, idempotency

#[tokio::test]
async fn multi_node_multi_writer_block_is_rwx_and_a_second_node_starts_a_migration() {
    let w = wire(
        &(1..=1)
            .map(|i| volume_yaml(i, "ReadWriteMany", ""))
            .collect::<String>(),
    )
    .await;
    let mut c = w.controller();
    let mut request = publish("pvc-1", "node-a", Mode::MultiNodeMultiWriter);
    request
        .volume_context
        .insert("migrationTimeoutSeconds".to_owned(), "600".to_owned());
    c.controller_publish_volume(request.clone())
        .await
        .expect("attach");
    request.node_id = "node-b".to_owned();
    c.controller_publish_volume(request).await.expect("migrate");
    let view = w
        .rig
        .controller
        .volume(&VolumeId::new("pvc-1"))
        .expect("tracked");
    assert_eq!(view.mode, csi_events::AccessMode::Rwx);
    assert_eq!(
        view.nodes,
        vec![NodeName::from("node-a"), NodeName::from("node-b")]
    );
    let got = w.rig.new_events().await;
    assert_eq!(got[1].reason, "MigrationStarted");
    assert!(
        got[1].message.contains("timeout: 10m0s"),
        "{}",
        got[1].message
    );
}

#[tokio::test]
async fn the_claim_comes_from_the_volume_context() {
    let w = wire(&rwx()).await;
    let mut c = w.controller();
    let mut request = publish("pvc-1", "node-a", Mode::SingleNodeWriter);
    // The PV's claimRef names disk-1; the context names the claim `other`.
    request
        .volume_context
        .insert("csi.storage.k8s.io/pvc/name".to_owned(), "other".to_owned());
    c.controller_publish_volume(request).await.expect("attach");
    w.rig
        .expect_events(&[(
            N,
            "VolumeAttached",
            "[pvc-1]: Attached to node node-a (duration: 0s)",
            "other",
        )])
        .await;
}

#[tokio::test]
async fn publish_and_unpublish_are_idempotent_over_the_wire() {
    let w = wire(&rwx()).await;
    let mut c = w.controller();
    for _ in 0..3 {
        let answer = c
            .controller_publish_volume(publish("pvc-1", "node-a", Mode::SingleNodeWriter))
            .await
            .expect("attach")
            .into_inner();
        assert!(answer.publish_context.is_empty());
    }
    for _ in 0..3 {
        c.controller_unpublish_volume(unpublish("pvc-1", "node-a"))
            .await
            .expect("detach");
    }
    // Unknown volume and unknown node: already detached.
    c.controller_unpublish_volume(unpublish("pvc-9", "node-a"))
        .await
        .expect("unknown volume");
    c.controller_unpublish_volume(unpublish("pvc-1", "node-x"))
        .await
        .expect("unknown node");
    w.rig
        .expect_events(&[
            (
                N,
                "VolumeAttached",
                "[pvc-1]: Attached to node node-a (duration: 0s)",
                "disk-1",
            ),
            (
                N,
                "VolumeDetached",
                "[pvc-1]: Detached from node node-a",
                "disk-1",
            ),
        ])
        .await;
}

#[tokio::test]
async fn unpublish_without_a_node_detaches_every_node_target_first() {
    let w = wire(&rwx()).await;
    let mut c = w.controller();
    for node in ["node-a", "node-b"] {
        c.controller_publish_volume(publish("pvc-1", node, Mode::MultiNodeMultiWriter))
            .await
            .expect("attach");
    }
    w.rig.new_events().await;
    c.controller_unpublish_volume(unpublish("pvc-1", ""))
        .await
        .expect("detach all");
    assert!(w.rig.controller.volumes().is_empty(), "untracked");
    let got: Vec<(String, String)> = w
        .rig
        .new_events()
        .await
        .into_iter()
        .map(|e| (e.reason, e.message))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "MigrationFailed".to_owned(),
                "[pvc-1]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: target detached before source, elapsed: 0s".to_owned()
            ),
            ("VolumeDetached".to_owned(), "[pvc-1]: Detached from node node-a".to_owned()),
        ]
    );
    let status = c
        .controller_unpublish_volume(unpublish("", "node-a"))
        .await
        .expect_err("no volume id");
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "volume_id is required")
    );
}

// ---------------------------------------------------------------- concurrency

/// Storage whose existence check of `pvc-1` waits for a permit: a call on it can be held in
/// flight while a second one arrives. Other volumes pass at once.
struct Gated {
    gate: Arc<Semaphore>,
    entered: Arc<Semaphore>,
}

impl Storage for Gated {
    async fn volume_exists(&self, volume: &VolumeId) -> Result<bool, RpcError> {
        if volume.as_str() != "pvc-1" {
            return Ok(true);
        }
        self.entered.add_permits(1);
        let permit = self.gate.acquire().await.expect("gate open");
        permit.forget();
        Ok(true)
    }
}

#[tokio::test]
async fn a_second_call_on_a_volume_in_flight_is_aborted_and_the_state_is_never_torn() {
    let rig = rig(&rwx()).await;
    let gate = Arc::new(Semaphore::new(0));
    let entered = Arc::new(Semaphore::new(0));
    let driver = CsiDriver::new(
        CsiConfig::new("rds.csi.srvlab.io"),
        Gated {
            gate: gate.clone(),
            entered: entered.clone(),
        },
    );
    driver.set_controller(rig.controller.clone());
    let (channel, _server, _stop) = serve_driver(driver, true).await;
    let mut first = ControllerClient::new(channel.clone());
    let held = tokio::spawn(async move {
        first
            .controller_publish_volume(publish("pvc-1", "node-a", Mode::MultiNodeMultiWriter))
            .await
    });
    entered
        .acquire()
        .await
        .expect("the first call is in flight")
        .forget();
    let mut second = ControllerClient::new(channel.clone());
    for request in [
        publish("pvc-1", "node-b", Mode::MultiNodeMultiWriter),
        publish("pvc-1", "node-a", Mode::MultiNodeMultiWriter),
    ] {
        assert_eq!(
            refused(&mut second, request).await,
            (
                Code::Aborted,
                "an operation for volume pvc-1 is already in progress".to_owned()
            )
        );
    }
    let status = second
        .controller_unpublish_volume(unpublish("pvc-1", "node-a"))
        .await
        .expect_err("unpublish meanwhile");
    assert_eq!(status.code(), Code::Aborted);
    assert!(
        rig.controller.volumes().is_empty(),
        "nothing decided while held"
    );
    // Another volume is not held up by it.
    second
        .controller_publish_volume(publish("pvc-2", "node-b", Mode::MultiNodeMultiWriter))
        .await
        .expect("another volume");
    gate.add_permits(1);
    held.await.expect("join").expect("the first call succeeds");
    let views = rig.controller.volumes();
    assert_eq!(views.len(), 2);
    assert_eq!(views[0].nodes, vec![NodeName::from("node-a")]);
    // Released: the volume takes calls again.
    gate.add_permits(10);
    second
        .controller_publish_volume(publish("pvc-1", "node-b", Mode::MultiNodeMultiWriter))
        .await
        .expect("migrate after release");
}

// ---------------------------------------------------------------- identity, node, routing

#[tokio::test]
async fn identity_names_the_driver_and_probe_waits_for_the_controller() {
    let rig = rig(&rwx()).await;
    let driver = CsiDriver::new(
        CsiConfig::new("example.csi.io").node_id("node-a"),
        AnyVolume,
    );
    let (channel, _server, _stop) = serve_driver(driver.clone(), true).await;
    let mut identity = IdentityClient::new(channel.clone());
    let info = identity
        .get_plugin_info(GetPluginInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    assert_eq!(info.name, "example.csi.io");
    assert_eq!(info.vendor_version, env!("CARGO_PKG_VERSION"));
    let capabilities = identity
        .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
        .await
        .expect("capabilities")
        .into_inner()
        .capabilities;
    assert_eq!(
        capabilities,
        vec![PluginCapability {
            r#type: Some(plugin_capability::Type::Service(
                plugin_capability::Service {
                    r#type: plugin_capability::service::Type::ControllerService as i32,
                }
            )),
        }]
    );
    let ready = |p: ProbeResponse| p.ready.map(|b| b.value);
    let before = identity
        .probe(ProbeRequest {})
        .await
        .expect("probe")
        .into_inner();
    assert_eq!(ready(before), Some(false));
    let mut controller = ControllerClient::new(channel.clone());
    let status = controller
        .controller_publish_volume(publish("pvc-1", "node-a", Mode::SingleNodeWriter))
        .await
        .expect_err("not ready");
    assert_eq!(status.code(), Code::Unavailable);
    driver.set_controller(rig.controller.clone());
    let after = identity
        .probe(ProbeRequest {})
        .await
        .expect("probe")
        .into_inner();
    assert_eq!(ready(after), Some(true));
    let capabilities = controller
        .controller_get_capabilities(ControllerGetCapabilitiesRequest {})
        .await
        .expect("capabilities")
        .into_inner()
        .capabilities;
    assert_eq!(
        capabilities,
        vec![ControllerServiceCapability {
            r#type: Some(controller_service_capability::Type::Rpc(
                controller_service_capability::Rpc {
                    r#type: controller_service_capability::rpc::Type::PublishUnpublishVolume as i32,
                }
            )),
        }]
    );
    let node = NodeClient::new(channel)
        .node_get_info(NodeGetInfoRequest {})
        .await
        .expect("node info")
        .into_inner();
    assert_eq!(node.node_id, "node-a");
}

/// Calls `path` with an empty message and returns the status.
async fn call_raw(channel: Channel, path: &'static str) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    grpc.unary::<ProbeRequest, ProbeResponse, _>(
        tonic::Request::new(ProbeRequest {}),
        http::uri::PathAndQuery::from_static(path),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .expect_err("not served here")
}

#[tokio::test]
async fn other_controller_rpcs_are_unimplemented_or_go_to_the_wrapped_service() {
    let rig = rig(&rwx()).await;
    let driver = CsiDriver::new(CsiConfig::new("rds.csi.srvlab.io"), AnyVolume);
    driver.set_controller(rig.controller.clone());
    let (channel, _server, _stop) = serve_driver(driver.clone(), true).await;
    let status = call_raw(channel, "/csi.v1.Controller/CreateVolume").await;
    assert_eq!(status.code(), Code::Unimplemented);

    // Wrapped: CreateVolume reaches the driver's own service, publish still reaches the model.
    let theirs = tower::service_fn(|request: http::Request<tonic::body::Body>| async move {
        let status = tonic::Status::resource_exhausted(format!("theirs: {}", request.uri().path()));
        Ok::<_, std::convert::Infallible>(status.into_http())
    });
    let delegate = Delegate::new(driver.controller_server(), theirs);
    let path = socket_path();
    let router = Server::builder().add_service(delegate);
    let serve_path = path.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let _server = tokio::spawn(async move {
        serve_unix(router, &serve_path, async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    let channel = connect_with_retry(&path).await;
    let status = call_raw(channel.clone(), "/csi.v1.Controller/CreateVolume").await;
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::ResourceExhausted,
            "theirs: /csi.v1.Controller/CreateVolume"
        )
    );
    ControllerClient::new(channel)
        .controller_publish_volume(publish("pvc-1", "node-a", Mode::SingleNodeWriter))
        .await
        .expect("publish reaches the model");
    assert_eq!(rig.controller.volumes().len(), 1);
    drop(stop);
}
