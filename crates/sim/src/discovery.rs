//! Discovery documents: `/version` (minor 32, which the gcloud kubectl dispatcher keys on),
//! `/api`, `/apis` and the per-group-version resource lists, in the aggregated (v2) form when the
//! client asks for it and the legacy form otherwise. Built from the resource table; pure.

use serde_json::{Value, json};

use super::resources::{RESOURCES, ResourceDef, group_versions};

pub const AGGREGATED_CT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

pub fn version() -> Value {
    json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-sim", "gitCommit": "0000000000000000000000000000000000000000",
           "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.4", "compiler": "gc",
           "platform": "linux/amd64"})
}

/// Whether the Accept header asks for aggregated discovery.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.contains("as=APIGroupDiscoveryList") && accept.contains("v=v2")
}

fn aggregated_resource(r: &ResourceDef) -> Value {
    let subs: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            let kind = if *s == "log" { json!({}) } else { json!({"group": r.group, "version": r.version, "kind": r.kind}) };
            json!({"subresource": s, "responseKind": kind, "verbs": if *s == "log" { json!(["get"]) } else { json!(["get", "patch", "update"]) }})
        })
        .collect();
    json!({"resource": r.plural, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
           "scope": if r.namespaced { "Namespaced" } else { "Cluster" }, "singularResource": r.singular,
           "shortNames": r.short_names, "verbs": r.verbs, "subresources": subs})
}

/// `GET /api` (`core = true`) or `GET /apis` in the aggregated form.
pub fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, v)| {
            let resources: Vec<Value> = RESOURCES
                .iter()
                .filter(|r| r.group == g && r.version == v)
                .map(aggregated_resource)
                .collect();
            let meta = if core { json!({}) } else { json!({"name": g}) };
            json!({"metadata": meta, "versions": [{"version": v, "freshness": "Current", "resources": resources}]})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

pub fn legacy_api() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

pub fn legacy_apis() -> Value {
    let groups: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /api/v1` or `/apis/{group}/{version}`: `None` when the group version is not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let rs: Vec<&ResourceDef> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if rs.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in &rs {
        resources.push(
            json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                              "verbs": r.verbs, "shortNames": r.short_names}),
        );
        for s in r.subresources {
            resources.push(
                json!({"name": format!("{}/{s}", r.plural), "singularName": "", "namespaced": r.namespaced,
                                  "kind": if *s == "log" { "Pod" } else { r.kind }, "verbs": ["get"]}),
            );
        }
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": rs[0].api_version(), "resources": resources}),
    )
}

/// `GET /apis/{group}`.
pub fn group(group: &str) -> Option<Value> {
    let (_, v) = group_versions()
        .into_iter()
        .find(|(g, _)| *g == group && !g.is_empty())?;
    let gv = json!({"groupVersion": format!("{group}/{v}"), "version": v});
    Some(
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [gv.clone()], "preferredVersion": gv}),
    )
}
