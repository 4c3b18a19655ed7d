//! Secrets: per-step secret env values and registry pull credentials.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ObjectMeta;

/// A Secret. `string_data` is write-only (the apiserver folds it into base64 `data`); values
/// read back arrive base64-encoded in `data`. Debug output never shows values.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default = "v1")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub string_data: BTreeMap<String, String>,
}
fn v1() -> String {
    "v1".into()
}
fn kind() -> String {
    "Secret".into()
}
super::resource!(Secret, "v1", "Secret", "secrets", true);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("metadata", &self.metadata)
            .field("type", &self.type_)
            .field(
                "keys",
                &self.data.keys().chain(self.string_data.keys()).collect::<Vec<_>>(),
            )
            .finish()
    }
}
