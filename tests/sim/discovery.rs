//! Discovery, OpenAPI, Tables, access reviews, and authentication (tokens, client certificates).

use http::Method;
use serde_json::json;

use super::{NS, pods_path};
use crate::common::{Raw, start_sim};

#[tokio::test]
async fn discovery_openapi_tables_and_access_reviews() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    assert_eq!(raw.get("/version").await.json()["minor"], "32");
    let agg = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let resp = raw.send(Method::GET, "/api", Some(agg), None).await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("as=APIGroupDiscoveryList")
    );
    assert_eq!(raw.get("/api").await.json()["kind"], "APIVersions");
    let v1 = raw.get("/api/v1").await.json();
    assert!(
        v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "pods/log")
    );
    let apis = raw.get("/apis").await.json();
    assert!(
        apis["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "storage.k8s.io")
    );
    let root = raw.get("/openapi/v3").await.json();
    let url = root["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = raw.get(&url).await.json();
    let op = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "Pod");

    // Tables for kubectl get.
    let table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let resp = raw
        .send(Method::GET, "/api/v1/namespaces", Some(table_accept), None)
        .await;
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let t: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["columnDefinitions"][0]["name"], "Name");
    let names: Vec<&str> = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cells"][0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "woodpecker"]);

    // StorageClasses: the k3s default.
    let sc = raw
        .get("/apis/storage.k8s.io/v1/storageclasses/local-path")
        .await
        .json();
    assert_eq!(
        sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "true"
    );

    // SelfSubjectAccessReview: allowed, unless a fault denies the verb.
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                        "spec": {"resourceAttributes": {"namespace": NS, "verb": "create", "resource": "pods"}}});
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let r = raw.post(path, &review).await;
    assert_eq!((r.status, r.json()["status"]["allowed"].as_bool()), (201, Some(true)));
    sim.faults().deny_verb("create");
    assert_eq!(raw.post(path, &review).await.json()["status"]["allowed"], false);
    sim.shutdown().await;
}

#[tokio::test]
async fn authentication_tokens_and_client_certificates() {
    let sim = start_sim().await;
    let mut raw = Raw::new(&sim);
    assert_eq!(raw.get(&pods_path()).await.status, 200);
    raw.token = Some("wrong".into());
    let r = raw.get(&pods_path()).await;
    assert_eq!((r.status, r.json()["reason"].as_str()), (401, Some("Unauthorized")));
    raw.token = None;
    assert_eq!(raw.get(&pods_path()).await.status, 401, "anonymous over TLS is refused");
    assert_eq!(raw.get("/version").await.status, 200, "/version is public");
    let id = sim.client_certificate("alice", &["devs"]).unwrap();
    let cert = Raw::with_identity(&sim, Some(id));
    assert_eq!(cert.get(&pods_path()).await.status, 200);
    // The record names who each request authenticated as.
    let users: Vec<(u16, String)> = sim.requests().iter().map(|r| (r.status, r.user.clone())).collect();
    assert_eq!(users[0], (200, "sim".to_string()));
    assert_eq!(users[1], (401, String::new()));
    assert_eq!(users[3], (200, "system:anonymous".to_string()));
    assert_eq!(users.last().unwrap(), &(200, "alice".to_string()));
    // The kubeconfig carries the CA and the token, never printed elsewhere.
    let kc = std::fs::read_to_string(sim.kubeconfig_path()).unwrap();
    assert!(kc.contains("certificate-authority-data:") && kc.contains(sim.token()));
    assert!(!format!("{:?}", sim.kube_config()).contains(sim.token()));
    sim.shutdown().await;
}
