//! Leases (`pkg/registry/coordination/lease/strategy.go`): no rules beyond ObjectMeta.

use super::Strategy;

/// The Lease strategy: the generic behaviour throughout.
#[derive(Debug)]
pub struct Lease;

impl Strategy for Lease {}
