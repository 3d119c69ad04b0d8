//! Nothing here: this member crate exists for its `apiserver` bench (see `benches/`), so the
//! peer's dependencies (kube 4, k8s-openapi 0.28) stay out of the normal build.
