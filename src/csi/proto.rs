//! The CSI v1 messages this crate serves and sends, written with prost's derive from the CSI
//! v1.12 field numbers and names (docs/csi.md §7), plus the generated gRPC service code.
//!
//! Only the messages of the RPCs served here exist; a field this crate does not read is still
//! declared where a peer may send it, so nothing a peer sends is lost on a round trip through
//! these types. Map fields are `HashMap<String, String>`, as prost maps them.
//!
//! ```
//! use csi_events::csi::proto::{volume_capability, VolumeCapability};
//! use prost::Message;
//! let capability = VolumeCapability::block(volume_capability::access_mode::Mode::MultiNodeMultiWriter);
//! let bytes = capability.encode_to_vec();
//! assert_eq!(VolumeCapability::decode(bytes.as_slice()).unwrap(), capability);
//! ```

use std::collections::HashMap;

/// `google.protobuf.BoolValue` (`value` = 1): wire-compatible, declared here so the crate
/// needs no well-known-types crate.
#[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
pub struct BoolValue {
    /// The value.
    #[prost(bool, tag = "1")]
    pub value: bool,
}

// ---- Identity ----

/// `GetPluginInfoRequest` (no fields).
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct GetPluginInfoRequest {}

/// `GetPluginInfoResponse`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct GetPluginInfoResponse {
    /// The driver name (`rds.csi.srvlab.io`).
    #[prost(string, tag = "1")]
    pub name: String,
    /// The driver's version.
    #[prost(string, tag = "2")]
    pub vendor_version: String,
    /// Opaque extra facts.
    #[prost(map = "string, string", tag = "3")]
    pub manifest: HashMap<String, String>,
}

/// `GetPluginCapabilitiesRequest` (no fields).
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct GetPluginCapabilitiesRequest {}

/// `GetPluginCapabilitiesResponse`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct GetPluginCapabilitiesResponse {
    /// What the plugin offers.
    #[prost(message, repeated, tag = "1")]
    pub capabilities: Vec<PluginCapability>,
}

/// `PluginCapability`: `oneof type { Service service = 1; VolumeExpansion volume_expansion = 2; }`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct PluginCapability {
    /// The capability.
    #[prost(oneof = "plugin_capability::Type", tags = "1, 2")]
    pub r#type: Option<plugin_capability::Type>,
}

/// Nested types of [`PluginCapability`].
pub mod plugin_capability {
    /// The `type` oneof.
    #[derive(Clone, PartialEq, Eq, ::prost::Oneof)]
    pub enum Type {
        /// A service the plugin serves.
        #[prost(message, tag = "1")]
        Service(Service),
        /// Volume expansion support.
        #[prost(message, tag = "2")]
        VolumeExpansion(VolumeExpansion),
    }

    /// `PluginCapability.Service`.
    #[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
    pub struct Service {
        /// Which service.
        #[prost(enumeration = "service::Type", tag = "1")]
        pub r#type: i32,
    }

    /// Nested types of [`Service`].
    pub mod service {
        /// `PluginCapability.Service.Type`.
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration,
        )]
        #[repr(i32)]
        pub enum Type {
            /// Unknown.
            Unknown = 0,
            /// The Controller service.
            ControllerService = 1,
            /// Topology constraints.
            VolumeAccessibilityConstraints = 2,
            /// The GroupController service.
            GroupControllerService = 3,
            /// The SnapshotMetadata service.
            SnapshotMetadataService = 4,
        }
    }

    /// `PluginCapability.VolumeExpansion`.
    #[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
    pub struct VolumeExpansion {
        /// ONLINE = 1, OFFLINE = 2.
        #[prost(int32, tag = "1")]
        pub r#type: i32,
    }
}

/// `ProbeRequest` (no fields).
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ProbeRequest {}

/// `ProbeResponse`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ProbeResponse {
    /// Ready to serve (false until the controller's rebuild has finished).
    #[prost(message, optional, tag = "1")]
    pub ready: Option<BoolValue>,
}

// ---- Controller ----

/// `ControllerGetCapabilitiesRequest` (no fields).
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ControllerGetCapabilitiesRequest {}

/// `ControllerGetCapabilitiesResponse`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ControllerGetCapabilitiesResponse {
    /// The RPCs served.
    #[prost(message, repeated, tag = "1")]
    pub capabilities: Vec<ControllerServiceCapability>,
}

/// `ControllerServiceCapability`: `oneof type { RPC rpc = 1; }`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ControllerServiceCapability {
    /// The capability.
    #[prost(oneof = "controller_service_capability::Type", tags = "1")]
    pub r#type: Option<controller_service_capability::Type>,
}

/// Nested types of [`ControllerServiceCapability`].
pub mod controller_service_capability {
    /// The `type` oneof.
    #[derive(Clone, Copy, PartialEq, Eq, ::prost::Oneof)]
    pub enum Type {
        /// An RPC capability.
        #[prost(message, tag = "1")]
        Rpc(Rpc),
    }

    /// `ControllerServiceCapability.RPC`.
    #[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
    pub struct Rpc {
        /// Which RPC.
        #[prost(enumeration = "rpc::Type", tag = "1")]
        pub r#type: i32,
    }

    /// Nested types of [`Rpc`].
    pub mod rpc {
        /// `ControllerServiceCapability.RPC.Type`.
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration,
        )]
        #[repr(i32)]
        pub enum Type {
            /// Unknown.
            Unknown = 0,
            /// CreateVolume / DeleteVolume.
            CreateDeleteVolume = 1,
            /// ControllerPublishVolume / ControllerUnpublishVolume.
            PublishUnpublishVolume = 2,
            /// ListVolumes.
            ListVolumes = 3,
            /// GetCapacity.
            GetCapacity = 4,
            /// CreateSnapshot / DeleteSnapshot.
            CreateDeleteSnapshot = 5,
            /// ListSnapshots.
            ListSnapshots = 6,
            /// Cloning.
            CloneVolume = 7,
            /// Read-only publish.
            PublishReadonly = 8,
            /// ControllerExpandVolume.
            ExpandVolume = 9,
            /// ListVolumes reports published nodes.
            ListVolumesPublishedNodes = 10,
            /// Volume condition.
            VolumeCondition = 11,
            /// ControllerGetVolume.
            GetVolume = 12,
            /// SINGLE_NODE_SINGLE_WRITER / SINGLE_NODE_MULTI_WRITER.
            SingleNodeMultiWriter = 13,
            /// ControllerModifyVolume.
            ModifyVolume = 14,
        }
    }
}

/// `VolumeCapability`: `oneof access_type { BlockVolume block = 1; MountVolume mount = 2; }`,
/// `AccessMode access_mode = 3`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct VolumeCapability {
    /// Block or mount.
    #[prost(oneof = "volume_capability::AccessType", tags = "1, 2")]
    pub access_type: Option<volume_capability::AccessType>,
    /// The access mode.
    #[prost(message, optional, tag = "3")]
    pub access_mode: Option<volume_capability::AccessMode>,
}

impl VolumeCapability {
    /// A block capability with `mode`, as the external-attacher builds it for `volumeMode: Block`.
    pub fn block(mode: volume_capability::access_mode::Mode) -> Self {
        Self {
            access_type: Some(volume_capability::AccessType::Block(
                volume_capability::BlockVolume {},
            )),
            access_mode: Some(volume_capability::AccessMode { mode: mode as i32 }),
        }
    }
}

/// Nested types of [`VolumeCapability`].
pub mod volume_capability {
    /// The `access_type` oneof.
    #[derive(Clone, PartialEq, Eq, ::prost::Oneof)]
    pub enum AccessType {
        /// A raw block device.
        #[prost(message, tag = "1")]
        Block(BlockVolume),
        /// A mounted filesystem.
        #[prost(message, tag = "2")]
        Mount(MountVolume),
    }

    /// `VolumeCapability.BlockVolume` (no fields).
    #[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
    pub struct BlockVolume {}

    /// `VolumeCapability.MountVolume`.
    #[derive(Clone, PartialEq, Eq, ::prost::Message)]
    pub struct MountVolume {
        /// Filesystem type.
        #[prost(string, tag = "1")]
        pub fs_type: String,
        /// Mount flags.
        #[prost(string, repeated, tag = "2")]
        pub mount_flags: Vec<String>,
        /// Group of the mount.
        #[prost(string, tag = "3")]
        pub volume_mount_group: String,
    }

    /// `VolumeCapability.AccessMode`.
    #[derive(Clone, Copy, PartialEq, Eq, ::prost::Message)]
    pub struct AccessMode {
        /// The mode.
        #[prost(enumeration = "access_mode::Mode", tag = "1")]
        pub mode: i32,
    }

    /// Nested types of [`AccessMode`].
    pub mod access_mode {
        /// `VolumeCapability.AccessMode.Mode`.
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration,
        )]
        #[repr(i32)]
        pub enum Mode {
            /// Unknown.
            Unknown = 0,
            /// One node, read-write.
            SingleNodeWriter = 1,
            /// One node, read-only.
            SingleNodeReaderOnly = 2,
            /// Many nodes, read-only.
            MultiNodeReaderOnly = 3,
            /// Many nodes, one writer.
            MultiNodeSingleWriter = 4,
            /// Many nodes, many writers.
            MultiNodeMultiWriter = 5,
            /// One node, one writer (workload).
            SingleNodeSingleWriter = 6,
            /// One node, many writers (workloads).
            SingleNodeMultiWriter = 7,
        }
    }
}

/// `ControllerPublishVolumeRequest`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
#[prost(skip_debug)]
pub struct ControllerPublishVolumeRequest {
    /// The volume (`pv.spec.csi.volumeHandle`).
    #[prost(string, tag = "1")]
    pub volume_id: String,
    /// The node (the CSINode's `nodeID` for this driver).
    #[prost(string, tag = "2")]
    pub node_id: String,
    /// How the volume is used.
    #[prost(message, optional, tag = "3")]
    pub volume_capability: Option<VolumeCapability>,
    /// Read-only publish.
    #[prost(bool, tag = "4")]
    pub readonly: bool,
    /// Secrets (never logged).
    #[prost(map = "string, string", tag = "5")]
    pub secrets: HashMap<String, String>,
    /// `pv.spec.csi.volumeAttributes`.
    #[prost(map = "string, string", tag = "6")]
    pub volume_context: HashMap<String, String>,
}

impl std::fmt::Debug for ControllerPublishVolumeRequest {
    /// Secrets are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerPublishVolumeRequest")
            .field("volume_id", &self.volume_id)
            .field("node_id", &self.node_id)
            .field("volume_capability", &self.volume_capability)
            .field("readonly", &self.readonly)
            .field("secrets", &format_args!("<{} hidden>", self.secrets.len()))
            .field("volume_context", &self.volume_context)
            .finish()
    }
}

/// `ControllerPublishVolumeResponse`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ControllerPublishVolumeResponse {
    /// Handed to the node's NodeStageVolume / NodePublishVolume.
    #[prost(map = "string, string", tag = "1")]
    pub publish_context: HashMap<String, String>,
}

/// `ControllerUnpublishVolumeRequest`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
#[prost(skip_debug)]
pub struct ControllerUnpublishVolumeRequest {
    /// The volume.
    #[prost(string, tag = "1")]
    pub volume_id: String,
    /// The node; empty = every node the volume is published to.
    #[prost(string, tag = "2")]
    pub node_id: String,
    /// Secrets (never logged).
    #[prost(map = "string, string", tag = "3")]
    pub secrets: HashMap<String, String>,
}

impl std::fmt::Debug for ControllerUnpublishVolumeRequest {
    /// Secrets are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerUnpublishVolumeRequest")
            .field("volume_id", &self.volume_id)
            .field("node_id", &self.node_id)
            .field("secrets", &format_args!("<{} hidden>", self.secrets.len()))
            .finish()
    }
}

/// `ControllerUnpublishVolumeResponse` (no fields).
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct ControllerUnpublishVolumeResponse {}

// ---- Node (the minimum csi-sanity needs to learn a node id) ----

/// `NodeGetInfoRequest` (no fields).
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct NodeGetInfoRequest {}

/// `NodeGetInfoResponse`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct NodeGetInfoResponse {
    /// The node's id.
    #[prost(string, tag = "1")]
    pub node_id: String,
    /// 0: no limit.
    #[prost(int64, tag = "2")]
    pub max_volumes_per_node: i64,
}

/// `NodeGetCapabilitiesRequest` (no fields).
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct NodeGetCapabilitiesRequest {}

/// `NodeGetCapabilitiesResponse`: this crate's minimal Node service offers none.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct NodeGetCapabilitiesResponse {
    /// Always empty here.
    #[prost(message, repeated, tag = "1")]
    pub capabilities: Vec<NodeServiceCapability>,
}

/// `NodeServiceCapability`: `oneof type { RPC rpc = 1; }`, the RPC's `Type type = 1`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct NodeServiceCapability {
    /// `RPC.type` as its number (this crate never sends one).
    #[prost(message, optional, tag = "1")]
    pub rpc: Option<controller_service_capability::Rpc>,
}

/// The generated Identity service: `identity_server::{Identity, IdentityServer}`,
/// `identity_client::IdentityClient`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod identity {
    include!(concat!(env!("OUT_DIR"), "/csi.v1.Identity.rs"));
}

/// The generated Controller service (the three RPCs served here; every other Controller RPC
/// answers UNIMPLEMENTED or goes to a wrapped driver service, see [`super::Delegate`]).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod controller {
    include!(concat!(env!("OUT_DIR"), "/csi.v1.Controller.rs"));
}

/// The generated Node service (NodeGetInfo and NodeGetCapabilities only).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod node {
    include!(concat!(env!("OUT_DIR"), "/csi.v1.Node.rs"));
}
