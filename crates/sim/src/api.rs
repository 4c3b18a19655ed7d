//! Request routing for the REST API: parses `/api/v1/...` and `/apis/{g}/{v}/...` paths into a
//! resource target and dispatches to list/watch/create/get/replace/patch/delete, logs, access
//! reviews, discovery and OpenAPI. Authentication and faults happen before, in `server`.

use std::sync::Arc;

use ::http::{HeaderMap, Method, header};
use bytes::Bytes;
use serde_json::{Value, json};

use super::Shared;
use super::resources::{self, ResourceDef};
use super::select::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::Key;
use super::watch::{self, WatchSpec};
use super::wire::{self, Query, Resp};
use super::write::{access_review, create, patch, replace};
use super::{delete, discovery, logs, openapi, page, proto, table};

/// A parsed resource path.
struct Target {
    def: &'static ResourceDef,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    watch_path: bool,
}

fn parse_target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let (watch_path, rest) = match rest.first() {
        Some(&"watch") => (true, &rest[1..]),
        _ => (false, rest),
    };
    let find = |p: &str| resources::find(group, version, p);
    let t = |def, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
        def,
        namespace: ns.map(String::from),
        name: name.map(String::from),
        sub: sub.map(String::from),
        watch_path,
    };
    match rest {
        // In the core group `namespaces/NAME/status` and `/finalize` are the Namespace's own
        // subresources, not a resource inside it.
        ["namespaces", ns, plural, tail @ ..] if !group.is_empty() || !matches!(*plural, "status" | "finalize") => {
            let def = find(plural).filter(|d| d.namespaced)?;
            match tail {
                [] => Some(t(def, Some(ns), None, None)),
                [name] => Some(t(def, Some(ns), Some(name), None)),
                [name, sub] => Some(t(def, Some(ns), Some(name), Some(sub))),
                _ => None,
            }
        }
        [plural] => Some(t(find(plural)?, None, None, None)),
        [plural, name] => find(plural)
            .filter(|d| !d.namespaced)
            .map(|d| t(d, None, Some(name), None)),
        [plural, name, sub] => find(plural)
            .filter(|d| !d.namespaced)
            .map(|d| t(d, None, Some(name), Some(sub))),
        _ => None,
    }
}

/// Answers one authenticated request.
pub async fn route(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Resp {
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(proto::is_protobuf);
    let body = if protobuf && !body.is_empty() {
        match proto::to_json(&body) {
            Ok(v) => Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
            Err(e) => return wire::error(&e),
        }
    } else {
        body
    };
    match route_inner(shared, method, path, q, headers, body).await {
        Ok(r) => r,
        Err(e) => wire::error(&e),
    }
}

async fn route_inner(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Resp, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let get = method == Method::GET;
    match segs.as_slice() {
        ["version"] if get => Ok(wire::json(200, &discovery::version())),
        ["healthz" | "readyz" | "livez"] if get => Ok(wire::bytes(200, "text/plain", "ok")),
        [root @ ("api" | "apis")] if get => {
            let core = *root == "api";
            Ok(if discovery::wants_aggregated(&accept) {
                wire::bytes(
                    200,
                    discovery::AGGREGATED_CT,
                    serde_json::to_vec(&discovery::aggregated(core)).unwrap_or_default(),
                )
            } else if core {
                wire::json(200, &discovery::legacy_api())
            } else {
                wire::json(200, &discovery::legacy_apis())
            })
        }
        ["openapi", "v3"] if get => Ok(wire::json(200, &openapi::root())),
        ["openapi", "v3", rest @ ..] if get => openapi::group_version(&rest.join("/"))
            .map(|d| wire::json(200, &d))
            .ok_or_else(ApiError::path_not_found),
        ["api", v] if get => discovery::resource_list("", v)
            .map(|d| wire::json(200, &d))
            .ok_or_else(ApiError::path_not_found),
        ["apis", g] if get => discovery::group(g)
            .map(|d| wire::json(200, &d))
            .ok_or_else(ApiError::path_not_found),
        ["apis", g, v] if get => discovery::resource_list(g, v)
            .map(|d| wire::json(200, &d))
            .ok_or_else(ApiError::path_not_found),
        ["api", v, rest @ ..] => {
            let t = parse_target("", v, rest).ok_or_else(ApiError::path_not_found)?;
            resource(shared, method, t, q, &accept, body).await
        }
        ["apis", g, v, rest @ ..] => {
            let t = parse_target(g, v, rest).ok_or_else(ApiError::path_not_found)?;
            resource(shared, method, t, q, &accept, body).await
        }
        _ => Err(ApiError::path_not_found()),
    }
}

pub(super) fn parse_body(def: &ResourceDef, body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            def.kind, def.version, def.kind
        ))
    })
}

fn ensure_namespace(shared: &Shared, ns: &str, creating: bool) -> Result<(), ApiError> {
    let obj = shared
        .store
        .get(&Key::new("namespaces", "", ns))
        .ok_or_else(|| ApiError::not_found("namespaces", ns))?;
    if creating && obj["metadata"]["deletionTimestamp"].is_string() {
        let mut e = ApiError::new(
            403,
            "Forbidden",
            format!("unable to create new content in namespace {ns} because it is being terminated"),
        );
        e.details = Some(json!({"name": ns, "kind": "namespaces"}));
        return Err(e);
    }
    Ok(())
}

async fn resource(
    shared: &Arc<Shared>,
    method: &Method,
    t: Target,
    q: &Query,
    accept: &str,
    body: Bytes,
) -> Result<Resp, ApiError> {
    let def = t.def;
    if verb(method, &t, q).is_some_and(|v| !def.verbs.contains(&v)) {
        return Err(ApiError::method_not_allowed());
    }
    let as_table = table::wants_table(accept);
    match (t.name.as_deref(), t.sub.as_deref()) {
        (None, None) => match *method {
            Method::GET if t.watch_path || q.flag("watch") => {
                let spec = WatchSpec {
                    def,
                    namespace: t.namespace.clone(),
                    labels: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?,
                    fields: FieldSelector::parse(def.plural, q.get("fieldSelector").unwrap_or(""))?,
                    table: as_table,
                };
                watch::handle(shared, spec, q)
            }
            Method::GET => list(shared, &t, q, as_table),
            Method::POST => {
                if def.plural == "selfsubjectaccessreviews" {
                    return access_review(shared, def, &body);
                }
                if def.namespaced && t.namespace.is_none() {
                    return Err(ApiError::method_not_allowed());
                }
                let ns = namespace_key(&t);
                if def.namespaced {
                    ensure_namespace(shared, &ns, true)?;
                }
                create(shared, def, &ns, q, &body)
            }
            Method::DELETE => delete_collection(shared, &t, q, &body),
            _ => Err(ApiError::method_not_allowed()),
        },
        (Some(_), _) => item(shared, method, &t, q, as_table, &body).await,
        (None, Some(_)) => Err(ApiError::path_not_found()),
    }
}

/// The RBAC verb of a request, checked against the kind's verbs; `None` for subresources.
fn verb(method: &Method, t: &Target, q: &Query) -> Option<&'static str> {
    match (method.clone(), t.name.is_some(), t.sub.as_deref()) {
        (_, _, Some(_)) => None,
        (Method::GET, false, _) => Some(if t.watch_path || q.flag("watch") {
            "watch"
        } else {
            "list"
        }),
        (Method::GET, true, _) => Some("get"),
        (Method::POST, false, _) => Some("create"),
        (Method::PUT, true, _) => Some("update"),
        (Method::PATCH, true, _) => Some("patch"),
        (Method::DELETE, true, _) => Some("delete"),
        (Method::DELETE, false, _) => Some("deletecollection"),
        _ => None,
    }
}

/// The namespace part of the store's keys: empty for cluster-scoped kinds.
fn namespace_key(t: &Target) -> String {
    if t.def.namespaced {
        t.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    }
}

/// The objects of a kind the selectors match, one page of them, as a list or a Table.
fn list(shared: &Arc<Shared>, t: &Target, q: &Query, as_table: bool) -> Result<Resp, ApiError> {
    let def = t.def;
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(def.plural, q.get("fieldSelector").unwrap_or(""))?;
    let (items, rv) = shared
        .store
        .list(def.plural, t.namespace.as_deref().filter(|_| def.namespaced));
    let items: Vec<Value> = items
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    let page = page::page(&shared.store, items, rv, q)?;
    let mut list_meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(c) = &page.continue_token {
        list_meta["continue"] = json!(c);
        list_meta["remainingItemCount"] = json!(page.remaining.unwrap_or(0));
    }
    if as_table {
        let mut t = table::table(def.plural, &page.items, &page.rv.to_string(), true);
        t["metadata"] = list_meta;
        return Ok(wire::json(200, &t));
    }
    let items: Vec<Value> = page
        .items
        .into_iter()
        .map(|mut o| {
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    Ok(wire::json(
        200,
        &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(),
                              "metadata": list_meta, "items": items}),
    ))
}

/// DELETE on a collection: every object the selectors match, as a list of what was deleted.
fn delete_collection(shared: &Arc<Shared>, t: &Target, q: &Query, body: &[u8]) -> Result<Resp, ApiError> {
    let def = t.def;
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(def.plural, q.get("fieldSelector").unwrap_or(""))?;
    let opts = delete::Options::parse(q, body)?;
    let (items, rv) = shared
        .store
        .list(def.plural, t.namespace.as_deref().filter(|_| def.namespaced));
    let mut out = Vec::new();
    for o in items.into_iter().filter(|o| labels.matches(o) && fields.matches(o)) {
        let key = Key::new(
            def.plural,
            o["metadata"]["namespace"].as_str().unwrap_or(""),
            o["metadata"]["name"].as_str().unwrap_or(""),
        );
        if let Ok((_, obj)) = delete::delete(shared, def, &key, &opts) {
            out.push(obj);
        }
    }
    Ok(wire::json(
        200,
        &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(),
                              "metadata": {"resourceVersion": rv.to_string()}, "items": out}),
    ))
}

/// A request on one object or its subresource (`log`, `eviction`, `status`).
async fn item(
    shared: &Arc<Shared>,
    method: &Method,
    t: &Target,
    q: &Query,
    as_table: bool,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let def = t.def;
    let (Some(name), sub) = (t.name.as_deref(), t.sub.as_deref()) else {
        return Err(ApiError::path_not_found());
    };
    let ns_key = namespace_key(t);
    let key = Key::new(def.plural, &ns_key, name);
    match (method.clone(), sub) {
        (Method::GET, Some("log")) if def.plural == "pods" => logs::handle(shared, &ns_key, name, q).await,
        (Method::POST, Some("eviction")) if def.plural == "pods" => {
            // As the apiserver does (1.26+): say why before the graceful delete.
            delete::mark_disruption(shared, &key, "EvictionByEvictionAPI", "Eviction API: evicting");
            let opts = delete::Options::default();
            delete::delete(shared, def, &key, &opts)?;
            Ok(wire::json(
                201,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ))
        }
        (Method::GET, None | Some("status")) => {
            if t.watch_path || q.flag("watch") {
                let fields = FieldSelector::parse(def.plural, &format!("metadata.name={name}"))?;
                let spec = WatchSpec {
                    def,
                    namespace: t.namespace.clone(),
                    labels: LabelSelector::default(),
                    fields,
                    table: as_table,
                };
                return watch::handle(shared, spec, q);
            }
            let obj = shared
                .store
                .get(&key)
                .ok_or_else(|| ApiError::not_found(def.plural, name))?;
            if as_table {
                let rv = obj["metadata"]["resourceVersion"].as_str().unwrap_or("").to_string();
                return Ok(wire::json(200, &table::table(def.plural, &[obj], &rv, true)));
            }
            Ok(wire::json(200, &obj))
        }
        (Method::PUT, None | Some("status")) => replace(shared, def, &key, body, sub.is_some()),
        (Method::PATCH, None | Some("status")) => patch(shared, def, &key, body, sub.is_some()),
        (Method::DELETE, None) => {
            let opts = delete::Options::parse(q, body)?;
            let (code, obj) = delete::delete(shared, def, &key, &opts)?;
            Ok(wire::json(code, &obj))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}
