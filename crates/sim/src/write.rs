//! The write verbs: create (field validation Strict/Warn/Ignore, admission, dryRun, PVC
//! provisioning, `Warning` headers), replace with optimistic concurrency, JSON merge patch, and
//! SelfSubjectAccessReviews.

use std::sync::Arc;

use ::http::{HeaderValue, header};
use serde_json::{Value, json};

use super::Shared;
use super::api::parse_body;
use super::resources::ResourceDef;
use super::status::ApiError;
use super::store::Key;
use super::wire::{self, Query, Resp};
use super::{admit, configmap, delete, fields, storage};

pub(super) fn create(
    shared: &Arc<Shared>,
    def: &'static ResourceDef,
    ns: &str,
    q: &Query,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let obj = parse_body(def, body)?;
    let unknown = fields::unknown_fields(def, &obj);
    let mut warnings = Vec::new();
    match q.get("fieldValidation").unwrap_or("Warn") {
        "Strict" if !unknown.is_empty() => {
            let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                def.kind,
                def.version,
                def.kind,
                list.join(", ")
            )));
        }
        "Strict" | "Ignore" => {}
        "Warn" => warnings = unknown,
        other => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation {other:?} is invalid: must be Ignore, Warn or Strict"
            )));
        }
    }
    let default_sc = storage::default_class(shared);
    let obj = admit::admit_create(def, ns, obj, default_sc.as_deref())?;
    if def.plural == "pods" {
        admit::pod_security(shared.store.get(&Key::new("namespaces", "", ns)).as_ref(), &obj)?;
    }
    if def.plural == "configmaps" {
        kind_rules(def, &obj, configmap::validate(&obj))?;
    }
    if q.get("dryRun") == Some("All") {
        return Ok(wire::json(201, &obj));
    }
    let created = shared.store.create(def.plural, ns, obj)?;
    if def.plural == "persistentvolumeclaims" {
        storage::claim_created(shared, &created);
    }
    let mut resp = wire::json(201, &created);
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"unknown field \\\"{w}\\\"\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    Ok(resp)
}

/// 422 naming `obj` when a kind's own rules found causes.
fn kind_rules(def: &ResourceDef, obj: &Value, causes: Vec<super::status::Cause>) -> Result<(), ApiError> {
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        def.kind,
        obj["metadata"]["name"].as_str().unwrap_or(""),
        causes,
    ))
}

pub(super) fn replace(
    shared: &Shared,
    def: &ResourceDef,
    key: &Key,
    body: &[u8],
    status_only: bool,
) -> Result<Resp, ApiError> {
    let new = parse_body(def, body)?;
    if new["metadata"]["name"].as_str().is_some_and(|n| n != key.name) {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    if def.plural == "configmaps" && !status_only {
        let cur = shared
            .store
            .get(key)
            .ok_or_else(|| ApiError::not_found(def.plural, &key.name))?;
        kind_rules(def, &cur, configmap::update_causes(&cur, &new))?;
    }
    // The resourceVersion is compared under the store's lock, in the same step as the write,
    // so of two writers that read the same version exactly one wins (a Lease race is real).
    let wanted = new["metadata"]["resourceVersion"].as_str().filter(|s| !s.is_empty());
    let mut conflict = false;
    let updated = shared
        .store
        .update(key, |o| {
            if wanted.is_some_and(|rv| Some(rv) != o["metadata"]["resourceVersion"].as_str()) {
                conflict = true;
            } else if status_only {
                o["status"] = new["status"].clone();
            } else {
                let status = o["status"].clone();
                let mut n = new.clone();
                n["kind"] = json!(def.kind);
                n["apiVersion"] = json!(def.api_version());
                if !status.is_null() && def.plural != "secrets" {
                    n["status"] = status;
                }
                if let Some(dt) = o["metadata"].get("deletionTimestamp").cloned() {
                    n["metadata"]["deletionTimestamp"] = dt;
                }
                *o = n;
            }
        })
        .ok_or_else(|| ApiError::not_found(def.plural, &key.name))?;
    if conflict {
        return Err(ApiError::conflict(
            def.plural,
            &key.name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    delete::finalize_if_released(shared, key);
    Ok(wire::json(200, &updated))
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => {
            let mut v = patch.clone();
            if let Some(p) = v.as_object_mut() {
                p.retain(|_, x| !x.is_null());
            }
            *target = v;
        }
    }
}

/// The main resource ignores `status` in a patch; the status subresource takes only `status`.
pub(super) fn patch(
    shared: &Shared,
    def: &ResourceDef,
    key: &Key,
    body: &[u8],
    status_only: bool,
) -> Result<Resp, ApiError> {
    let mut p = parse_body(def, body)?;
    if let Some(obj) = p.as_object_mut() {
        if status_only {
            obj.retain(|k, _| k == "status");
        } else {
            obj.remove("status");
        }
    }
    if !p.is_object() {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "only JSON merge patches are supported by the simulated cluster",
        ));
    }
    if def.plural == "configmaps" {
        let cur = shared
            .store
            .get(key)
            .ok_or_else(|| ApiError::not_found(def.plural, &key.name))?;
        let mut next = cur.clone();
        merge(&mut next, &p);
        kind_rules(def, &cur, configmap::update_causes(&cur, &next))?;
    }
    let updated = shared
        .store
        .update(key, |o| merge(o, &p))
        .ok_or_else(|| ApiError::not_found(def.plural, &key.name))?;
    delete::finalize_if_released(shared, key);
    Ok(wire::json(200, &updated))
}

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`: allowed unless a fault
/// denies the verb.
pub(super) fn access_review(shared: &Shared, def: &ResourceDef, body: &[u8]) -> Result<Resp, ApiError> {
    let mut review = parse_body(def, body)?;
    let attrs = &review["spec"]["resourceAttributes"];
    let verb = attrs["verb"].as_str().unwrap_or("").to_string();
    if attrs.is_null() && review["spec"]["nonResourceAttributes"].is_null() {
        return Err(ApiError::invalid(
            def.kind,
            "",
            vec![super::status::Cause::required("spec.resourceAttributes")],
        ));
    }
    let allowed = !shared.faults.verb_denied(&verb);
    review["kind"] = json!(def.kind);
    review["apiVersion"] = json!(def.api_version());
    review["metadata"] = json!({"creationTimestamp": null});
    review["status"] = if allowed {
        json!({"allowed": true, "reason": "the simulated cluster allows everything"})
    } else {
        json!({"allowed": false, "reason": format!("verb {verb:?} denied by a fault of the simulated cluster")})
    };
    Ok(wire::json(201, &review))
}
