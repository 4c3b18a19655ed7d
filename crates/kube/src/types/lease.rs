//! Leases (`coordination.k8s.io/v1`): a named, renewable claim that one holder is alive, as
//! client-go's leader election uses them (`holderIdentity`, `leaseDurationSeconds`,
//! `acquireTime`, `renewTime`, `leaseTransitions`). Times are `MicroTime`s
//! (`2006-01-02T15:04:05.000000Z`); [`micro_time`] writes one, [`crate::time::parse_rfc3339`]
//! reads any RFC 3339 form back.

use serde::{Deserialize, Serialize};

use super::ObjectMeta;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: LeaseSpec,
}
fn api_version() -> String {
    "coordination.k8s.io/v1".into()
}
fn kind() -> String {
    "Lease".into()
}
super::resource!(Lease, "coordination.k8s.io/v1", "Lease", "leases", true);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseSpec {
    /// Who holds it now; empty or absent when released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_identity: Option<String>,
    /// How long after `renewTime` others may take it over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_duration_seconds: Option<i32>,
    /// When the current holder took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_time: Option<String>,
    /// When the current holder last said it is alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_time: Option<String>,
    /// How many times it changed hands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_transitions: Option<i32>,
}

impl Lease {
    /// A new Lease object (no spec yet) with the right `apiVersion` and `kind`.
    pub fn new(metadata: ObjectMeta) -> Lease {
        Lease {
            api_version: api_version(),
            kind: kind(),
            metadata,
            spec: LeaseSpec::default(),
        }
    }
}

/// A `MicroTime` from (seconds since the epoch, nanoseconds), cut to microseconds as the
/// apiserver stores it.
pub fn micro_time(secs: i64, nanos: u32) -> String {
    let whole = crate::time::format_seconds(secs);
    format!("{}.{:06}Z", whole.trim_end_matches('Z'), nanos / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_only_what_is_set_and_reads_the_api_shape() {
        let mut lease = Lease::new(ObjectMeta {
            name: "agent-1".into(),
            ..ObjectMeta::default()
        });
        assert_eq!(
            serde_json::to_value(&lease).unwrap(),
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "agent-1"}, "spec": {}})
        );
        lease.spec = LeaseSpec {
            holder_identity: Some("pod-0_1".into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(micro_time(0, 1_500)),
            renew_time: Some(micro_time(1_709_210_096, 123_456_789)),
            lease_transitions: Some(2),
        };
        let v = serde_json::to_value(&lease).unwrap();
        assert_eq!(
            v["spec"],
            json!({"holderIdentity": "pod-0_1", "leaseDurationSeconds": 15,
                   "acquireTime": "1970-01-01T00:00:00.000001Z", "renewTime": "2024-02-29T12:34:56.123456Z",
                   "leaseTransitions": 2})
        );
        let back: Lease = serde_json::from_value(v).unwrap();
        assert_eq!(back, lease);
        assert_eq!(
            crate::time::parse_rfc3339(back.spec.renew_time.as_deref().unwrap()),
            Some((1_709_210_096, 123_456_000))
        );
        // What the apiserver sends for a fresh Lease, unknown fields ignored.
        let read: Lease = serde_json::from_value(json!({"metadata": {"name": "x", "resourceVersion": "7"},
            "spec": {"holderIdentity": "h", "strategy": "OldestEmulationVersion"}}))
        .unwrap();
        assert_eq!(read.kind, "Lease");
        assert_eq!(read.spec.holder_identity.as_deref(), Some("h"));
        assert_eq!(read.spec.renew_time, None);
    }
}
