//! CSINodes (`pkg/registry/storage/csinode/strategy.go`): the generic behaviour; the
//! per-driver validation of the real server is not modelled (README: differences).

use super::Strategy;

/// The CSINode strategy: the generic behaviour throughout.
#[derive(Debug)]
pub struct CsiNode;

impl Strategy for CsiNode {}
