//! Generates the CSI gRPC service code (feature `csi`) with tonic-build's pure-Rust `manual`
//! builder: no `protoc`, no `.proto` file. The messages themselves are written by hand with
//! prost's derive in `src/csi/proto.rs`, from the CSI v1.12 field numbers (docs/csi.md).

fn main() {
    #[cfg(feature = "csi")]
    csi::generate();
}

#[cfg(feature = "csi")]
mod csi {
    use tonic_build::manual::{Builder, Method, Service};

    const CODEC: &str = "tonic_prost::ProstCodec";
    const PROTO: &str = "crate::csi::proto";

    fn method(name: &str, route: &str, input: &str, output: &str) -> Method {
        Method::builder()
            .name(name)
            .route_name(route)
            .input_type(format!("{PROTO}::{input}"))
            .output_type(format!("{PROTO}::{output}"))
            .codec_path(CODEC)
            .build()
    }

    /// A unary method whose messages are named `{Route}Request` / `{Route}Response`.
    fn unary(name: &str, route: &str) -> Method {
        method(
            name,
            route,
            &format!("{route}Request"),
            &format!("{route}Response"),
        )
    }

    pub fn generate() {
        println!("cargo:rerun-if-changed=build.rs");
        let identity = Service::builder()
            .name("Identity")
            .package("csi.v1")
            .method(unary("get_plugin_info", "GetPluginInfo"))
            .method(unary("get_plugin_capabilities", "GetPluginCapabilities"))
            .method(unary("probe", "Probe"))
            .build();
        let controller = Service::builder()
            .name("Controller")
            .package("csi.v1")
            .method(unary(
                "controller_publish_volume",
                "ControllerPublishVolume",
            ))
            .method(unary(
                "controller_unpublish_volume",
                "ControllerUnpublishVolume",
            ))
            .method(unary(
                "controller_get_capabilities",
                "ControllerGetCapabilities",
            ))
            .build();
        let node = Service::builder()
            .name("Node")
            .package("csi.v1")
            .method(unary("node_get_info", "NodeGetInfo"))
            .method(unary("node_get_capabilities", "NodeGetCapabilities"))
            .build();
        Builder::new().compile(&[identity, controller, node]);
    }
}
