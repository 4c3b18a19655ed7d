//! Deletion semantics: DeleteOptions (body or query), UID/RV preconditions, pod grace periods
//! (forced to 0 for unscheduled or finished pods; otherwise the pod stays with a
//! deletionTimestamp until the kubelet has killed it), finalizers, propagation (Orphan strips
//! owner references, Foreground holds the owner until dependents are gone; the garbage
//! collector does the rest) and namespace termination.

use serde_json::{Value, json};

use super::Shared;
use super::resources::ResourceDef;
use super::status::ApiError;
use super::store::Key;
use super::time;
use super::wire::Query;

pub const FOREGROUND: &str = "foregroundDeletion";

/// Parsed DeleteOptions.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub grace: Option<i64>,
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

impl Options {
    pub fn parse(q: &Query, body: &[u8]) -> Result<Self, ApiError> {
        let b: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
        };
        let grace = match b["gracePeriodSeconds"].as_i64() {
            Some(g) => Some(g),
            None => q.int("gracePeriodSeconds")?,
        };
        if grace.is_some_and(|g| g < 0) {
            return Err(ApiError::bad_request("gracePeriodSeconds must be >= 0"));
        }
        let propagation = b["propagationPolicy"]
            .as_str()
            .map(String::from)
            .or_else(|| q.get("propagationPolicy").map(String::from));
        if let Some(p) = &propagation
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy {p:?} is invalid: must be Orphan, Background or Foreground"
            )));
        }
        let propagation = propagation.or_else(|| (b["orphanDependents"] == true).then(|| "Orphan".to_string()));
        let dry_run =
            b["dryRun"].as_array().is_some_and(|d| d.iter().any(|x| x == "All")) || q.get("dryRun") == Some("All");
        Ok(Options {
            grace,
            propagation,
            uid: b["preconditions"]["uid"].as_str().map(String::from),
            resource_version: b["preconditions"]["resourceVersion"].as_str().map(String::from),
            dry_run,
        })
    }
}

fn finalizers(o: &Value) -> Vec<String> {
    o["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(String::from))
        .collect()
}

/// Adds `DisruptionTarget=True` with `reason` to a pod that has not ended yet: what the
/// apiserver's eviction, the taint manager and the scheduler's preemption write before they
/// delete a pod.
pub fn mark_disruption(shared: &Shared, key: &Key, reason: &str, message: &str) {
    shared.store.update(key, |o| {
        if matches!(o["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
            return;
        }
        let cond = json!({"type": "DisruptionTarget", "status": "True", "reason": reason,
            "message": message, "lastTransitionTime": super::time::now()});
        match o["status"]["conditions"].as_array_mut() {
            Some(list) => {
                list.retain(|c| c["type"] != "DisruptionTarget");
                list.push(cond);
            }
            None => o["status"]["conditions"] = json!([cond]),
        }
    });
}

/// Whether the kubelet still has to stop this pod before it may go.
fn pod_needs_kubelet(pod: &Value) -> bool {
    !pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty()
        && !matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

/// Removes the object now, tidying what hangs off it.
pub fn remove_now(shared: &Shared, key: &Key) -> Option<Value> {
    let obj = shared.store.remove(key)?;
    if key.plural == "pods" {
        shared.logs.remove_pod(&key.namespace, &key.name);
        shared.pod_ends.remove(&key.namespace, &key.name);
    }
    if key.plural == "persistentvolumeclaims" {
        let _ = std::fs::remove_dir_all(super::storage::claim_dir(shared, &key.namespace, &key.name));
    }
    Some(obj)
}

/// Deletes one object. Returns the HTTP code and body (the object, or a Success Status when
/// it is gone at once and has no useful last state).
pub fn delete(shared: &Shared, def: &ResourceDef, key: &Key, opts: &Options) -> Result<(u16, Value), ApiError> {
    let cur = shared
        .store
        .get(key)
        .ok_or_else(|| ApiError::not_found(def.plural, &key.name))?;
    let uid = cur["metadata"]["uid"].as_str().unwrap_or("").to_string();
    if let Some(want) = &opts.uid
        && *want != uid
    {
        return Err(ApiError::conflict(
            def.plural,
            &key.name,
            &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"),
        ));
    }
    if let Some(want) = &opts.resource_version
        && Some(want.as_str()) != cur["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(
            def.plural,
            &key.name,
            "Precondition failed: resourceVersion does not match",
        ));
    }
    if opts.dry_run {
        return Ok((200, cur));
    }
    let propagation = opts.propagation.as_deref().unwrap_or("Background");
    if propagation == "Orphan" {
        orphan_dependents(shared, &uid);
    }
    let foreground = propagation == "Foreground" && has_dependents(shared, &uid);
    let now = time::now();
    if def.plural == "namespaces" {
        let obj = shared
            .store
            .update(key, |o| {
                if !o["metadata"]["deletionTimestamp"].is_string() {
                    o["metadata"]["deletionTimestamp"] = json!(now);
                    o["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                }
                o["status"]["phase"] = json!("Terminating");
            })
            .unwrap_or(cur);
        return Ok((200, obj));
    }
    let mut grace = 0;
    if def.plural == "pods" {
        let default = cur["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
        grace = opts.grace.unwrap_or(default);
        if !pod_needs_kubelet(&cur) {
            grace = 0;
        }
    }
    let held = foreground || !finalizers(&cur).is_empty();
    if grace == 0 && !held {
        let obj = remove_now(shared, key).unwrap_or(cur);
        // Registries without `ReturnDeletedObject` answer a Success Status instead.
        if matches!(def.plural, "secrets" | "events" | "storageclasses" | "leases") {
            return Ok((200, success(def.plural, &key.name, &uid)));
        }
        return Ok((200, obj));
    }
    // Graceful (or held by finalizers): mark it and let the kubelet / GC finish.
    let already = cur["metadata"]["deletionTimestamp"].is_string();
    let obj = shared
        .store
        .update(key, |o| {
            let m = &mut o["metadata"];
            let shorter = m["deletionGracePeriodSeconds"].as_i64().is_none_or(|g| grace < g);
            if !already || shorter {
                m["deletionTimestamp"] = json!(now);
                m["deletionGracePeriodSeconds"] = json!(grace);
            }
            if foreground {
                let f = m["finalizers"].as_array_mut();
                match f {
                    Some(f) if !f.iter().any(|x| x == FOREGROUND) => f.push(json!(FOREGROUND)),
                    Some(_) => {}
                    None => m["finalizers"] = json!([FOREGROUND]),
                }
            }
        })
        .unwrap_or(cur);
    if grace == 0 && def.plural == "pods" && finalizers(&obj).is_empty() {
        // An explicit 0 on a running pod removes the object at once (kubectl --force).
        let obj = remove_now(shared, key).unwrap_or(obj);
        return Ok((200, obj));
    }
    Ok((200, obj))
}

/// After an update: an object with a deletionTimestamp and no finalizers left goes now
/// (pods only once the kubelet no longer runs them).
pub fn finalize_if_released(shared: &Shared, key: &Key) {
    let Some(o) = shared.store.get(key) else { return };
    if o["metadata"]["deletionTimestamp"].is_string()
        && finalizers(&o).is_empty()
        && key.plural != "namespaces"
        && (key.plural != "pods" || !pod_needs_kubelet(&o))
    {
        remove_now(shared, key);
    }
}

/// The `Status` a delete returns for kinds that do not return the deleted object.
fn success(plural: &str, name: &str, uid: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
           "details": {"name": name, "kind": plural, "uid": uid}})
}

/// Removes one finalizer, then lets the object go if nothing else holds it.
pub fn drop_finalizer(shared: &Shared, key: &Key, name: &str) {
    shared.store.update(key, |o| {
        // `get_mut`, not indexing: indexing would insert `finalizers: null`.
        if let Some(f) = o["metadata"].get_mut("finalizers").and_then(Value::as_array_mut) {
            f.retain(|x| x != name);
            if f.is_empty() {
                o["metadata"].as_object_mut().map(|m| m.remove("finalizers"));
            }
        }
    });
    finalize_if_released(shared, key);
}

fn owner_uids(o: &Value) -> Vec<String> {
    o["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(String::from))
        .collect()
}

pub fn has_dependents(shared: &Shared, uid: &str) -> bool {
    !shared
        .store
        .scan(|_, o| owner_uids(o).iter().any(|u| u == uid).then_some(()))
        .is_empty()
}

fn orphan_dependents(shared: &Shared, uid: &str) {
    let dependents = shared
        .store
        .scan(|k, o| owner_uids(o).iter().any(|u| u == uid).then(|| k.clone()));
    for k in dependents {
        {
            shared.store.update(&k, |o| {
                if let Some(refs) = o["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != uid);
                    if refs.is_empty() {
                        o["metadata"].as_object_mut().map(|m| m.remove("ownerReferences"));
                    }
                }
            });
        }
    }
}
