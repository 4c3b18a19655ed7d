//! Protobuf request bodies (`Content-Type: application/vnd.kubernetes.protobuf`). kubectl's
//! typed clients (`kubectl create namespace`, `create configmap`, `create secret`) send built-in
//! kinds that way: the magic `k8s\0`, then a `runtime.Unknown` whose `typeMeta` names the kind
//! and whose `raw` is the object's own message. We decode the envelope and the fields of the
//! kinds kubectl sends into the JSON the rest of the server reads; other kinds get 415.
//! Field numbers are those of `k8s.io/api/core/v1/generated.proto` and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`. Go's encoder writes empty strings
//! that its JSON encoder would omit (`omitempty`), so an empty string counts as absent. Pure.

use std::collections::BTreeMap;

use base64::Engine;
use prost::Message;
use serde_json::{Map, Value, json};

use super::status::ApiError;

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    content_encoding: Option<String>,
    #[prost(string, optional, tag = "4")]
    content_type: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct ObjectMeta {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    generate_name: Option<String>,
    #[prost(string, optional, tag = "3")]
    namespace: Option<String>,
    #[prost(string, optional, tag = "6")]
    resource_version: Option<String>,
    #[prost(btree_map = "string, string", tag = "11")]
    labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    annotations: BTreeMap<String, String>,
    #[prost(message, repeated, tag = "13")]
    owner_references: Vec<OwnerReference>,
    #[prost(string, repeated, tag = "14")]
    finalizers: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct OwnerReference {
    #[prost(string, optional, tag = "1")]
    kind: Option<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
    #[prost(string, optional, tag = "4")]
    uid: Option<String>,
    #[prost(string, optional, tag = "5")]
    api_version: Option<String>,
    #[prost(bool, optional, tag = "6")]
    controller: Option<bool>,
    #[prost(bool, optional, tag = "7")]
    block_owner_deletion: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct Namespace {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<NamespaceSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct NamespaceSpec {
    #[prost(string, repeated, tag = "1")]
    finalizers: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct ConfigMap {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, string", tag = "2")]
    data: BTreeMap<String, String>,
    #[prost(btree_map = "string, bytes", tag = "3")]
    binary_data: BTreeMap<String, Vec<u8>>,
    #[prost(bool, optional, tag = "4")]
    immutable: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct Secret {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, bytes", tag = "2")]
    data: BTreeMap<String, Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    r#type: Option<String>,
    #[prost(btree_map = "string, string", tag = "4")]
    string_data: BTreeMap<String, String>,
    #[prost(bool, optional, tag = "5")]
    immutable: Option<bool>,
}

/// Whether a Content-Type header names the protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(CONTENT_TYPE))
}

fn b64(b: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(b))
}

fn meta_json(m: Option<ObjectMeta>) -> Value {
    let m = m.unwrap_or_default();
    let mut out = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(k.into(), v);
        }
    };
    let text = |s: Option<String>| s.filter(|s| !s.is_empty()).map(Value::from);
    put("name", text(m.name));
    put("generateName", text(m.generate_name));
    put("namespace", text(m.namespace));
    put("resourceVersion", text(m.resource_version));
    put("labels", (!m.labels.is_empty()).then(|| json!(m.labels)));
    put("annotations", (!m.annotations.is_empty()).then(|| json!(m.annotations)));
    put("finalizers", (!m.finalizers.is_empty()).then(|| json!(m.finalizers)));
    let refs: Vec<Value> = m
        .owner_references
        .into_iter()
        .map(|r| {
            let mut o = json!({"apiVersion": r.api_version, "kind": r.kind, "name": r.name, "uid": r.uid});
            if let Some(c) = r.controller {
                o["controller"] = json!(c);
            }
            if let Some(b) = r.block_owner_deletion {
                o["blockOwnerDeletion"] = json!(b);
            }
            o
        })
        .collect();
    put("ownerReferences", (!refs.is_empty()).then(|| json!(refs)));
    Value::Object(out)
}

fn bad(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("the protobuf body could not be decoded: {what}: {e}"))
}

/// Decodes a protobuf body into the object's JSON (kind and apiVersion from the envelope).
pub fn to_json(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| ApiError::bad_request("the protobuf body does not start with the k8s\\0 prefix"))?;
    let env = Unknown::decode(rest).map_err(|e| bad("runtime.Unknown", e))?;
    if env.content_encoding.as_deref().is_some_and(|e| !e.is_empty()) {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "protobuf bodies with a contentEncoding are not supported by the simulated cluster",
        ));
    }
    let tm = env.type_meta.unwrap_or_default();
    let api_version = tm.api_version.unwrap_or_default();
    let kind = tm.kind.unwrap_or_default();
    let raw = env.raw.unwrap_or_default();
    let mut obj = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => {
            let n = Namespace::decode(raw.as_slice()).map_err(|e| bad("Namespace", e))?;
            let mut o = json!({"metadata": meta_json(n.metadata)});
            if let Some(s) = n.spec.filter(|s| !s.finalizers.is_empty()) {
                o["spec"] = json!({"finalizers": s.finalizers});
            }
            o
        }
        ("v1", "ConfigMap") => {
            let c = ConfigMap::decode(raw.as_slice()).map_err(|e| bad("ConfigMap", e))?;
            let mut o = json!({"metadata": meta_json(c.metadata)});
            if !c.data.is_empty() {
                o["data"] = json!(c.data);
            }
            if !c.binary_data.is_empty() {
                o["binaryData"] = Value::Object(c.binary_data.iter().map(|(k, v)| (k.clone(), b64(v))).collect());
            }
            if let Some(i) = c.immutable {
                o["immutable"] = json!(i);
            }
            o
        }
        ("v1", "Secret") => {
            let s = Secret::decode(raw.as_slice()).map_err(|e| bad("Secret", e))?;
            let mut o = json!({"metadata": meta_json(s.metadata)});
            if !s.data.is_empty() {
                o["data"] = Value::Object(s.data.iter().map(|(k, v)| (k.clone(), b64(v))).collect());
            }
            if !s.string_data.is_empty() {
                o["stringData"] = json!(s.string_data);
            }
            if let Some(t) = s.r#type.filter(|t| !t.is_empty()) {
                o["type"] = json!(t);
            }
            if let Some(i) = s.immutable {
                o["immutable"] = json!(i);
            }
            o
        }
        _ => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the simulated cluster decodes protobuf only for v1 Namespace, ConfigMap and Secret, not {kind:?} in {api_version:?}: send JSON"
                ),
            ));
        }
    };
    obj["kind"] = json!(kind);
    obj["apiVersion"] = json!(api_version);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let env = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some("v1".into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = MAGIC.to_vec();
        out.extend(env.encode_to_vec());
        out
    }

    #[test]
    fn config_maps_namespaces_and_secrets_decode() {
        let meta = ObjectMeta {
            name: Some("c1".into()),
            labels: [("a".to_string(), "b".to_string())].into(),
            ..Default::default()
        };
        let cm = ConfigMap {
            metadata: Some(meta.clone()),
            data: [("k".to_string(), "v".to_string())].into(),
            binary_data: [("bin".to_string(), vec![0u8, 1])].into(),
            immutable: Some(true),
        };
        let v = to_json(&envelope("ConfigMap", cm.encode_to_vec())).unwrap();
        assert_eq!(
            v,
            json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c1", "labels": {"a": "b"}},
                   "data": {"k": "v"}, "binaryData": {"bin": "AAE="}, "immutable": true})
        );
        let ns = Namespace {
            metadata: Some(meta.clone()),
            spec: None,
        };
        let v = to_json(&envelope("Namespace", ns.encode_to_vec())).unwrap();
        assert_eq!(v["metadata"]["name"], "c1");
        assert!(v.get("spec").is_none());
        let s = Secret {
            metadata: Some(meta),
            data: [("k".to_string(), b"v".to_vec())].into(),
            r#type: Some("Opaque".into()),
            ..Default::default()
        };
        let v = to_json(&envelope("Secret", s.encode_to_vec())).unwrap();
        assert_eq!(
            (v["data"]["k"].as_str(), v["type"].as_str()),
            (Some("dg=="), Some("Opaque"))
        );
    }

    #[test]
    fn other_kinds_and_garbage_are_refused() {
        assert_eq!(to_json(&envelope("Pod", Vec::new())).unwrap_err().code, 415);
        assert_eq!(to_json(b"{}").unwrap_err().code, 400);
        assert_eq!(to_json(b"k8s\0\xff\xff").unwrap_err().code, 400);
        assert!(is_protobuf("application/vnd.kubernetes.protobuf; charset=x"));
        assert!(!is_protobuf("application/json"));
    }
}
