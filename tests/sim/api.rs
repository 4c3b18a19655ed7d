use http::Method;
use serde_json::json;

use super::{NS, pod, pods_path};
use crate::common::{Raw, start_sim};

#[tokio::test]
async fn create_get_list_and_each_error_code() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let r = raw.post(&pods_path(), &pod("p1")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    assert_eq!(created["kind"], "Pod");
    assert_eq!(created["apiVersion"], "v1");
    assert_eq!(created["metadata"]["namespace"], NS);
    assert_eq!(created["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(
        created["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(created["status"]["phase"], "Pending");
    let rv1: u64 = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // 409 AlreadyExists with the plural in details.kind.
    let r = raw.post(&pods_path(), &pod("p1")).await;
    assert_eq!(r.status, 409);
    let s = r.json();
    assert_eq!(
        (s["kind"].as_str(), s["reason"].as_str()),
        (Some("Status"), Some("AlreadyExists"))
    );
    assert_eq!(s["message"], "pods \"p1\" already exists");
    assert_eq!(s["details"]["kind"], "pods");

    // 404 NotFound.
    let r = raw.get(&format!("{}/missing", pods_path())).await;
    assert_eq!(
        (r.status, r.json()["message"].as_str().unwrap()),
        (404, "pods \"missing\" not found")
    );
    // Creating into a namespace that does not exist.
    let r = raw.post("/api/v1/namespaces/nope/pods", &pod("x")).await;
    assert_eq!(
        (r.status, r.json()["message"].as_str().unwrap()),
        (404, "namespaces \"nope\" not found")
    );

    // 422 Invalid: bad name, no containers, container name too long.
    let r = raw
        .post(
            &pods_path(),
            &json!({"metadata": {"name": "Bad_Name"}, "spec": {"containers": [{"name": "ok", "image": "x"}]}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["details"]["causes"][0]["field"], "metadata.name");
    let r = raw
        .post(
            &pods_path(),
            &json!({"metadata": {"name": "empty"}, "spec": {"containers": []}}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["details"]["causes"][0]["field"].as_str()),
        (422, Some("spec.containers"))
    );
    let long = "c".repeat(64);
    let r = raw
        .post(
            &pods_path(),
            &json!({"metadata": {"name": "long"}, "spec": {"containers": [{"name": long, "image": "x"}]}}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("must be no more than 63 characters")
    );

    // Strict field validation: 400; Warn: 201 + Warning header.
    let mut bad = pod("strict");
    bad["spec"]["foo"] = json!(1);
    let r = raw.post(&format!("{}?fieldValidation=Strict", pods_path()), &bad).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("strict decoding error: unknown field \"spec.foo\"")
    );
    let r = raw.post(&format!("{}?fieldValidation=Warn", pods_path()), &bad).await;
    assert_eq!(r.status, 201);
    assert!(
        r.headers
            .get("warning")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("unknown field \\\"spec.foo\\\"")
    );

    // generateName.
    let r = raw
        .post(
            &pods_path(),
            &json!({"metadata": {"generateName": "gen-"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
        )
        .await;
    assert_eq!(r.status, 201);
    let name = r.json()["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // One global counter: later objects have larger resourceVersions; lists carry it.
    let list = raw.get(&pods_path()).await.json();
    assert_eq!(list["kind"], "PodList");
    let list_rv: u64 = list["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
    assert!(list_rv > rv1);
    assert_eq!(list["items"].as_array().unwrap().len(), 3);

    // Method not allowed.
    let r = raw.call(Method::PUT, &pods_path(), Some(&json!({}))).await;
    assert_eq!(r.status, 405);
    sim.shutdown().await;
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    for (name, app) in [("a1", "demo"), ("a2", "demo"), ("b1", "other")] {
        let mut p = pod(name);
        p["metadata"]["labels"] = json!({"app": app});
        assert_eq!(raw.post(&pods_path(), &p).await.status, 201);
    }
    let names = |v: serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(
            raw.get(&format!("{}?labelSelector=app%3Ddemo", pods_path()))
                .await
                .json()
        ),
        ["a1", "a2"]
    );
    assert_eq!(
        names(
            raw.get(&format!("{}?labelSelector=app!%3Ddemo", pods_path()))
                .await
                .json()
        ),
        ["b1"]
    );
    assert_eq!(
        names(
            raw.get(&format!("{}?labelSelector=app+in+(other)", pods_path()))
                .await
                .json()
        ),
        ["b1"]
    );
    assert_eq!(
        names(
            raw.get(&format!("{}?fieldSelector=metadata.name%3Da2", pods_path()))
                .await
                .json()
        ),
        ["a2"]
    );
    assert_eq!(
        names(
            raw.get(&format!(
                "{}?fieldSelector=metadata.name!%3Da2&labelSelector=app%3Ddemo",
                pods_path()
            ))
            .await
            .json()
        ),
        ["a1"]
    );
    let r = raw.get(&format!("{}?fieldSelector=spec.bogus%3Dx", pods_path())).await;
    assert_eq!(
        (r.status, r.json()["message"].as_str().unwrap()),
        (400, "field label not supported: spec.bogus")
    );
    // All namespaces.
    assert_eq!(
        raw.get("/api/v1/pods").await.json()["items"].as_array().unwrap().len(),
        3
    );
    // Events by involvedObject.name (pods get scheduled and emit events).
    crate::common::wait_for("events for a1", 5, || {
        let raw = raw.clone();
        async move {
            let v = raw
                .get(&format!(
                    "/api/v1/namespaces/{NS}/events?fieldSelector=involvedObject.name%3Da1"
                ))
                .await
                .json();
            let items = v["items"].as_array().cloned().unwrap_or_default();
            (!items.is_empty() && items.iter().all(|e| e["involvedObject"]["name"] == "a1")).then_some(())
        }
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn secrets_services_and_replace_patch() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let s = raw
        .post(
            &format!("/api/v1/namespaces/{NS}/secrets"),
            &json!({"metadata": {"name": "s1"}, "stringData": {"token": "abc"}}),
        )
        .await;
    assert_eq!(s.status, 201);
    assert_eq!(s.json()["data"]["token"], "YWJj");
    assert_eq!(s.json()["type"], "Opaque");
    let svc = raw
        .post(
            &format!("/api/v1/namespaces/{NS}/services"),
            &json!({"metadata": {"name": "wp-hsvc-1"}, "spec": {"clusterIP": "None", "selector": {"a": "b"}}}),
        )
        .await;
    assert_eq!(svc.status, 201, "{}", svc.text());
    assert_eq!(svc.json()["spec"]["clusterIP"], "None");
    let svc2 = raw
        .post(
            &format!("/api/v1/namespaces/{NS}/services"),
            &json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}),
        )
        .await;
    assert!(svc2.json()["spec"]["clusterIP"].as_str().unwrap().starts_with("10.43."));
    // Services need DNS-1035-ish label names.
    let bad = raw
        .post(
            &format!("/api/v1/namespaces/{NS}/services"),
            &json!({"metadata": {"name": "a.b"}, "spec": {}}),
        )
        .await;
    assert_eq!(bad.status, 422);

    // PUT with a stale resourceVersion -> 409 Conflict; PATCH merges.
    let path = format!("/api/v1/namespaces/{NS}/secrets/s1");
    let mut cur = raw.get(&path).await.json();
    let mut stale = cur.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let r = raw.call(Method::PUT, &path, Some(&stale)).await;
    assert_eq!((r.status, r.json()["reason"].as_str()), (409, Some("Conflict")));
    cur["metadata"]["labels"] = json!({"x": "y"});
    let r = raw.call(Method::PUT, &path, Some(&cur)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["metadata"]["labels"]["x"], "y");
    let r = raw
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"metadata": {"labels": {"x": null, "z": "1"}}})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["metadata"]["labels"], json!({"z": "1"}));
    // Secrets answer a delete with a Success Status, Services with the object.
    let r = raw.delete(&path, None).await.json();
    assert_eq!(
        (r["kind"].as_str(), r["status"].as_str(), r["details"]["name"].as_str()),
        (Some("Status"), Some("Success"), Some("s1"))
    );
    let r = raw
        .delete(&format!("/api/v1/namespaces/{NS}/services/web"), None)
        .await
        .json();
    assert_eq!(r["kind"], "Service");
    sim.shutdown().await;
}

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
    // The kubeconfig carries the CA and the token, never printed elsewhere.
    let kc = std::fs::read_to_string(sim.kubeconfig_path()).unwrap();
    assert!(kc.contains("certificate-authority-data:") && kc.contains(sim.token()));
    assert!(!format!("{:?}", sim.kube_config()).contains(sim.token()));
    sim.shutdown().await;
}

#[tokio::test]
async fn deletecollection_and_legacy_watch_paths() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let secrets = format!("/api/v1/namespaces/{NS}/secrets");
    for (n, l) in [("a", "x"), ("b", "x"), ("c", "y")] {
        raw.post(&secrets, &json!({"metadata": {"name": n, "labels": {"l": l}}}))
            .await;
    }
    let (status, mut w) = raw
        .lines(
            &format!(
                "/api/v1/watch/namespaces/{NS}/secrets?resourceVersion={}",
                sim.resource_version()
            ),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let r = raw.delete(&format!("{secrets}?labelSelector=l%3Dx"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 2);
    let left: Vec<String> = sim
        .objects("secrets", Some(NS))
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["c"]);
    for name in ["a", "b"] {
        let ev = w.event(5).await;
        assert_eq!(
            (ev["type"].as_str(), ev["object"]["metadata"]["name"].as_str()),
            (Some("DELETED"), Some(name))
        );
    }
    sim.shutdown().await;
}
