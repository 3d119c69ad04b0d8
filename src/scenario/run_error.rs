//! Why a scenario could not be run at all ([`RunError`]): refused up front for its target, or
//! the runtime or the cluster could not be set up.

/// Why a scenario could not be run at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The scenario needs the embedded server (a `fault` step) but runs against a kubeconfig.
    #[error(
        "{file}:{line}: `{step}` needs the embedded fake API server: fault steps cannot run against --kubeconfig (run without --kubeconfig, or leave this scenario out with --filter)"
    )]
    NeedsEmbedded {
        /// File.
        file: String,
        /// Line of the step.
        line: u32,
        /// The step.
        step: String,
    },
    /// A step black-box mode cannot play.
    #[error(
        "{file}:{line}: `{step}` cannot run in black-box mode: {why} (leave this scenario out with --filter)"
    )]
    Refused {
        /// File.
        file: String,
        /// Line of the step.
        line: u32,
        /// The step.
        step: String,
        /// Why.
        why: String,
    },
    /// The runtime or the cluster could not be set up.
    #[error("{0}")]
    Setup(String),
}
