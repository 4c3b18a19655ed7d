//! Just enough OpenAPI v3 for `kubectl create -f`: a root index and, per group version, one
//! PATCH operation per Kind carrying the GVK extension and a `fieldValidation` parameter, which
//! tells kubectl the server validates fields itself (see the kubectl-against-a-sim notes). Pure.

use serde_json::{Map, Value, json};

use super::resources::{RESOURCES, group_versions};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

pub fn root() -> Value {
    let mut paths = Map::new();
    for (g, v) in group_versions() {
        let p = gv_path(g, v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=sim")}),
        );
    }
    json!({"paths": paths})
}

/// The document for `/openapi/v3/<gv path>`, or `None` when not served.
pub fn group_version(path: &str) -> Option<Value> {
    let (g, v) = group_versions().into_iter().find(|(g, v)| gv_path(g, v) == path)?;
    let mut paths = Map::new();
    for r in RESOURCES.iter().filter(|r| r.group == g && r.version == v) {
        let item = if r.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("/{path}/{}/{{name}}", r.plural)
        };
        let op = json!({
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                           {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}}],
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": r.kind},
        });
        paths.insert(item, json!({"patch": op}));
    }
    Some(json!({"openapi": "3.0.0", "info": {"title": "Kubernetes (simulated)", "version": "v1.32.0"}, "paths": paths}))
}
