//! Namespaces (namespace-per-organisation mode creates them).

use serde::{Deserialize, Serialize};

use super::ObjectMeta;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    #[serde(default = "v1")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
}
fn v1() -> String {
    "v1".into()
}
fn kind() -> String {
    "Namespace".into()
}
super::resource!(Namespace, "v1", "Namespace", "namespaces", false);
