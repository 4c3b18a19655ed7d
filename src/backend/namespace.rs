//! The per-organisation Namespace (`NAMESPACE_PER_ORGANIZATION`): created on demand in
//! SetupWorkflow with only its name, as Woodpecker does, plus our agent label. Never deleted by
//! a workflow (others may share it). No I/O.

use super::labels;
use super::options::Options;
use kube::types::{Namespace, ObjectMeta};

/// The Namespace to ensure for a workflow of `org_id`, or `None` when per-org mode is off (the
/// single namespace is the admin's to create).
pub fn org_namespace(opts: &Options, org_id: i64, agent: &str) -> Option<Namespace> {
    if !opts.namespace_per_org {
        return None;
    }
    Some(Namespace {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        metadata: ObjectMeta {
            name: opts.namespace_for(org_id),
            labels: labels::ownership_labels("", agent),
            ..Default::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_per_org() {
        assert!(org_namespace(&Options::default(), 7, "").is_none());
        let opts = Options {
            namespace_per_org: true,
            namespace: "CI".into(),
            ..Default::default()
        };
        let ns = org_namespace(&opts, 7, "").unwrap();
        assert_eq!(ns.metadata.name, "ci-7");
        assert!(ns.metadata.labels.is_empty());
    }
}
