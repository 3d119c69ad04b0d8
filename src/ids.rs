//! Newtypes for the names the domain passes around: volumes, nodes and claims.
//!
//! A volume id and a node name are both strings on the wire; as types they cannot be swapped
//! by accident in a `post_*` call with five string parameters.
//!
//! ```
//! use csi_events::{ClaimName, NodeName, VolumeId};
//! let claim: ClaimName = "vms/disk-a".parse().unwrap();
//! assert_eq!(claim.namespace(), "vms");
//! assert_eq!(VolumeId::from("pvc-1").as_str(), "pvc-1");
//! assert_eq!(NodeName::from("node-a").to_string(), "node-a");
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident($inner:ty, $wrap:expr)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($inner);

        impl $name {
            /// Wraps a name.
            pub fn new(name: impl Into<String>) -> Self {
                Self::from(name.into())
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(name: &str) -> Self {
                Self::from(name.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(name: String) -> Self {
                let wrap: fn(String) -> $inner = $wrap;
                Self(wrap(name))
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        /// As a plain string.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        /// From a plain string.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::from)
            }
        }
    };
}

string_id!(
    /// A CSI volume id, which is also the PersistentVolume's name (`pvc-<uuid>`).
    VolumeId(String, |name| name)
);
string_id!(
    /// A Kubernetes node name. Shared text behind one pointer: a clone is a reference count,
    /// so the model holds each node's name once however many volumes and migrations name it,
    /// and a volume's two node slots take 16 bytes.
    NodeName(Arc<Box<str>>, |name| Arc::new(name.into_boxed_str()))
);

/// A PersistentVolumeClaim by namespace and name (`namespace/name`).
///
/// ```
/// use csi_events::ClaimName;
/// let claim = ClaimName::new("default", "data");
/// assert_eq!(claim.to_string(), "default/data");
/// assert!("no-slash".parse::<ClaimName>().is_err());
/// ```
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ClaimName {
    namespace: String,
    name: String,
}

impl ClaimName {
    /// The claim `name` in `namespace`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The claim named by a CSI volume context (`csi.storage.k8s.io/pvc/namespace` and
    /// `csi.storage.k8s.io/pvc/name`), when both keys are present and non-empty.
    ///
    /// ```
    /// use csi_events::ClaimName;
    /// use std::collections::BTreeMap;
    /// let mut context = BTreeMap::new();
    /// context.insert("csi.storage.k8s.io/pvc/namespace".to_string(), "vms".to_string());
    /// context.insert("csi.storage.k8s.io/pvc/name".to_string(), "disk".to_string());
    /// assert_eq!(ClaimName::from_volume_context(&context), Some(ClaimName::new("vms", "disk")));
    /// ```
    pub fn from_volume_context<'a, I>(context: I) -> Option<Self>
    where
        I: IntoIterator<Item = (&'a String, &'a String)>,
    {
        let (mut namespace, mut name) = (None, None);
        for (key, value) in context {
            match key.as_str() {
                "csi.storage.k8s.io/pvc/namespace" if !value.is_empty() => namespace = Some(value),
                "csi.storage.k8s.io/pvc/name" if !value.is_empty() => name = Some(value),
                _ => {}
            }
        }
        Some(Self::new(namespace?.clone(), name?.clone()))
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ClaimName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Why a text is not a `namespace/name` claim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a claim: write it as namespace/name, e.g. default/data")]
pub struct ClaimNameError(String);

impl FromStr for ClaimName {
    type Err = ClaimNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('/') {
            Some((namespace, name))
                if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
            {
                Ok(Self::new(namespace, name))
            }
            _ => Err(ClaimNameError(text.to_owned())),
        }
    }
}
