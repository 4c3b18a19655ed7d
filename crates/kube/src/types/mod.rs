//! Hand-written serde types for the Kubernetes objects and fields we use. Unknown fields are
//! ignored when reading; empty fields are skipped when writing (`skip_serializing_if`), so what
//! we send is exactly what we set.

mod event;
mod lease;
mod meta;
mod namespace;
mod pod;
mod pvc;
mod secret;
mod service;

pub use event::*;
pub use lease::*;
pub use meta::*;
pub use namespace::*;
pub use pod::*;
pub use pvc::*;
pub use secret::*;
pub use service::*;

/// A kind of object the client can address: its group/version, kind and plural path segment.
pub trait Resource: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static {
    /// `v1` for the core group, `group/version` otherwise.
    const API_VERSION: &'static str;
    const KIND: &'static str;
    /// The path segment, e.g. `pods`.
    const PLURAL: &'static str;
    /// Whether objects live in a namespace.
    const NAMESPACED: bool = true;

    fn meta(&self) -> &ObjectMeta;
    fn meta_mut(&mut self) -> &mut ObjectMeta;
}

/// Implements [`Resource`] for a struct with a `metadata: ObjectMeta` field.
#[macro_export]
macro_rules! resource {
    ($ty:ty, $api:literal, $kind:literal, $plural:literal, $namespaced:literal) => {
        impl $crate::types::Resource for $ty {
            const API_VERSION: &'static str = $api;
            const KIND: &'static str = $kind;
            const PLURAL: &'static str = $plural;
            const NAMESPACED: bool = $namespaced;
            fn meta(&self) -> &$crate::types::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut $crate::types::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}
pub use crate::resource;
