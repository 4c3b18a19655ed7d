//! CRUD, error codes, selectors, validation, replace/patch, pagination, deletecollection.

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

#[tokio::test]
async fn lists_paginate_with_limit_and_continue() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let secrets = format!("/api/v1/namespaces/{NS}/secrets");
    for i in 0..5 {
        raw.post(&secrets, &json!({"metadata": {"name": format!("s{i}")}}))
            .await;
    }
    let first = raw.get(&format!("{secrets}?limit=2")).await.json();
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&first), ["s0", "s1"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    // A change between pages does not move the snapshot's resourceVersion.
    raw.post(&secrets, &json!({"metadata": {"name": "s9"}})).await;
    let second = raw.get(&format!("{secrets}?limit=2&continue={token}")).await.json();
    assert_eq!(names(&second), ["s2", "s3"]);
    assert_eq!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    let token = second["metadata"]["continue"].as_str().unwrap().to_string();
    let last = raw.get(&format!("{secrets}?limit=2&continue={token}")).await.json();
    assert_eq!(names(&last), ["s4", "s9"]);
    assert!(last["metadata"]["continue"].is_null());
    // After a compaction the token is too old: 410 Expired.
    sim.compact_history();
    let r = raw.get(&format!("{secrets}?limit=2&continue={token}")).await;
    assert_eq!((r.status, r.json()["reason"].as_str()), (410, Some("Expired")));
    sim.shutdown().await;
}

#[tokio::test]
async fn status_is_written_only_through_the_status_subresource() {
    let sim = start_sim().await;
    let raw = Raw::new(&sim);
    let secrets = format!("/api/v1/namespaces/{NS}/persistentvolumeclaims");
    let pvc = json!({"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    raw.post(&secrets, &pvc).await;
    let path = format!("{secrets}/c");
    let r = raw
        .call(
            Method::PATCH,
            &path,
            Some(&json!({"metadata": {"labels": {"a": "b"}}, "status": {"phase": "Lost"}})),
        )
        .await;
    assert_eq!(
        (
            r.json()["metadata"]["labels"]["a"].as_str(),
            r.json()["status"]["phase"].as_str()
        ),
        (Some("b"), Some("Pending")),
        "the claim waits for its first consumer; a patch of the main resource cannot bind it"
    );
    let r = raw
        .call(
            Method::PATCH,
            &format!("{path}/status"),
            Some(&json!({"metadata": {"labels": {"x": "y"}}, "status": {"phase": "Lost"}})),
        )
        .await;
    assert_eq!(r.json()["status"]["phase"], "Lost");
    assert!(r.json()["metadata"]["labels"]["x"].is_null());
    sim.shutdown().await;
}
