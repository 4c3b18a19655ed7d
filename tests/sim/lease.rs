//! Leases (`coordination.k8s.io/v1`): kubectl creates, lists (the Holder column) and deletes
//! them; our client's `replace` races for real: of two writers that read the same
//! resourceVersion, exactly one wins and the other gets 409 Conflict.

use kube::Api;
use kube::types::{Lease, LeaseSpec, ObjectMeta, micro_time};

use super::NS;
use crate::common::{kubectl, start_sim};

#[tokio::test]
async fn kubectl_creates_lists_and_deletes_leases() {
    let sim = start_sim().await;
    let file = sim.dir().join("lease.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: agent-0\n  namespace: {NS}\n\
             spec:\n  holderIdentity: agent-0_abc\n  leaseDurationSeconds: 15\n  renewTime: \"2026-01-01T00:00:00.000000Z\"\n"
        ),
    )
    .unwrap();
    let (code, _, err) = kubectl(&sim, &["create", "-f", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = kubectl(&sim, &["get", "leases", "-n", NS]).await;
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["NAME", "HOLDER", "AGE"], "{out}");
    assert_eq!(rows[1][..2], ["agent-0", "agent-0_abc"], "{out}");
    let (code, out, err) = kubectl(
        &sim,
        &[
            "get",
            "lease",
            "agent-0",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.leaseDurationSeconds}",
        ],
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "15"), "{err}");
    let (code, out, err) = kubectl(&sim, &["delete", "lease", "agent-0", "-n", NS]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("lease.coordination.k8s.io \"agent-0\" deleted"), "{out}");
    assert!(sim.objects("leases", Some(NS)).is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn two_holders_race_and_exactly_one_wins() {
    let sim = start_sim().await;
    let client = kube::Client::new(sim.kube_config()).unwrap();
    let leases: Api<Lease> = Api::namespaced(client, NS);
    let mut lease = Lease::new(ObjectMeta {
        name: "agent-0".into(),
        ..ObjectMeta::default()
    });
    lease.spec = LeaseSpec {
        holder_identity: Some("first".into()),
        lease_duration_seconds: Some(15),
        renew_time: Some(micro_time(1_700_000_000, 0)),
        ..LeaseSpec::default()
    };
    let created = leases.create(&lease).await.unwrap();
    assert_eq!(created.spec, lease.spec);
    assert!(leases.create(&lease).await.unwrap_err().is_already_exists());

    // Both read version N and try to take it over.
    let take = |holder: &str| {
        let mut l = created.clone();
        l.spec.holder_identity = Some(holder.into());
        l.spec.lease_transitions = Some(1);
        l
    };
    let (la, lb) = (take("a"), take("b"));
    let (a, b) = tokio::join!(leases.replace(&la), leases.replace(&lb));
    let (won, lost) = match (a, b) {
        (Ok(w), Err(e)) | (Err(e), Ok(w)) => (w, e),
        (a, b) => panic!("expected one winner and one conflict, got {a:?} and {b:?}"),
    };
    assert!(lost.is_conflict(), "{lost}");
    assert_ne!(won.metadata.resource_version, created.metadata.resource_version);
    let now = leases.get("agent-0").await.unwrap();
    assert_eq!(now.spec.holder_identity, won.spec.holder_identity);
    assert_eq!(now.spec.lease_transitions, Some(1));
    // Without a resourceVersion a PUT is unconditional, as on a real apiserver.
    let mut blind = take("c");
    blind.metadata.resource_version.clear();
    assert_eq!(
        leases.replace(&blind).await.unwrap().spec.holder_identity.as_deref(),
        Some("c")
    );
    sim.shutdown().await;
}
