//! The I/O shell of preflight: asks the apiserver, one request per question, and hands the
//! answers to the pure judges beside it. Stops early when the cluster cannot be reached or
//! will not authenticate us, since every later answer would only repeat that.

use serde::{Deserialize, Serialize};

use super::permissions::{self, Permission, SelfSubjectAccessReview};
use super::storage::{self, StorageClass};
use super::{CheckOutcome, PreflightOptions, Report};
use crate::error_chain::one_line;
use kube::types::{Namespace, ObjectMeta, resource};
use kube::{Api, Client, Error, ListParams};

/// `GET /version`, the fields we print.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    #[serde(default)]
    pub git_version: String,
    #[serde(default)]
    pub platform: String,
}

/// `authentication.k8s.io/v1` SelfSubjectReview: who the apiserver thinks we are (GA in 1.28).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfSubjectReview {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SelfSubjectReviewStatus>,
}
resource!(
    SelfSubjectReview,
    "authentication.k8s.io/v1",
    "SelfSubjectReview",
    "selfsubjectreviews",
    false
);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfSubjectReviewStatus {
    #[serde(default)]
    pub user_info: UserInfo,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserInfo {
    #[serde(default)]
    pub username: String,
}

const ANONYMOUS: &str = "system:anonymous";

/// Runs every check against the cluster `client` talks to. Never fails: a check that cannot be
/// made is itself a line of the report.
pub async fn preflight(client: &Client, opts: &PreflightOptions) -> Report {
    let mut report = Report::default();
    match client.get_json::<VersionInfo>("/version").await {
        Ok(v) => report.push(
            "cluster",
            CheckOutcome::Ok(format!("reachable, Kubernetes {} {}", v.git_version, v.platform)),
        ),
        Err(e) if matches!(e, Error::Api { .. }) && !e.is_unauthorized() => {
            // Some clusters hide /version from anonymous users; an HTTP answer is still an answer.
            report.push(
                "cluster",
                CheckOutcome::Ok(format!("reachable (/version: {})", one_line(&e))),
            );
        }
        Err(e) if e.is_unauthorized() => report.push("cluster", CheckOutcome::Ok("reachable".into())),
        Err(e) => {
            report.push("cluster", CheckOutcome::Fail(format!("unreachable: {}", one_line(&e))));
            return report;
        }
    }

    let outcome = authentication(client).await;
    let failed = matches!(outcome, CheckOutcome::Fail(_));
    report.push("authentication", outcome);
    if failed {
        return report;
    }

    report.push("namespace", namespace(client, opts).await);

    for (perm, ns) in opts.permissions() {
        let name = if ns.is_empty() {
            format!("rbac: {} (all namespaces)", perm.describe())
        } else {
            format!("rbac: {}", perm.describe())
        };
        let outcome = match review(client, perm, ns).await {
            Answer::Allowed => CheckOutcome::Ok("allowed".into()),
            Answer::Denied(why) => CheckOutcome::Fail(format!("denied: {why}")),
            Answer::NotAsked(e) => CheckOutcome::Fail(format!("could not ask: {e}")),
        };
        report.push(name, outcome);
    }
    // The agent's Lease, in the base namespace: without it the agent still runs, but with no
    // guard against a second process of its identity and no reaping of dead agents' objects.
    for perm in permissions::LEASES {
        let outcome = match review(client, *perm, &opts.namespace).await {
            Answer::Allowed => CheckOutcome::Ok("allowed".into()),
            Answer::Denied(why) => CheckOutcome::Warn(format!(
                "denied: {why}; the agent runs without its Lease (no guard against a second \
                 agent of its identity, no reaping of dead agents' objects)"
            )),
            Answer::NotAsked(e) => CheckOutcome::Warn(format!("could not ask: {e}")),
        };
        report.push(format!("rbac: {}", perm.describe()), outcome);
    }

    let classes: Api<StorageClass> = Api::all(client.clone());
    let outcome = match classes.list(&ListParams::default()).await {
        Ok(list) => storage::judge(&list.items, &opts.storage_class, opts.storage_rwx),
        Err(e) if e.is_forbidden() => CheckOutcome::Warn(format!(
            "cannot list StorageClasses (forbidden; apply deploy/optional/storageclass-reader.yaml \
             to let preflight check them): {}",
            one_line(&e)
        )),
        Err(e) => CheckOutcome::Fail(format!("cannot list StorageClasses: {}", one_line(&e))),
    };
    report.push("storage", outcome);
    if !opts.caches.is_empty() {
        report.push("caches", caches(client, opts).await);
    }
    report
}

/// The apiserver's answer to a SelfSubjectAccessReview.
enum Answer {
    Allowed,
    /// Why it is denied.
    Denied(String),
    /// The review itself failed.
    NotAsked(String),
}

/// Whether this identity may do `perm` in `ns` (`""`: in every namespace).
async fn review(client: &Client, perm: Permission, ns: &str) -> Answer {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    match reviews.create(&perm.review(ns)).await {
        Ok(answer) => match permissions::verdict(&answer) {
            Ok(()) => Answer::Allowed,
            Err(why) => Answer::Denied(why),
        },
        Err(e) => Answer::NotAsked(one_line(&e)),
    }
}

/// Every claim `CACHES` names exists (the agent never creates them).
async fn caches(client: &Client, opts: &PreflightOptions) -> CheckOutcome {
    if opts.namespace_per_org {
        return CheckOutcome::Warn("not checked: with a namespace per organisation, each needs its own claims".into());
    }
    let ns = &opts.namespace;
    let claims: Api<kube::types::PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let found = match claims.list_all(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(e) => return CheckOutcome::Fail(format!("cannot list claims in `{ns}`: {}", one_line(&e))),
    };
    let missing: Vec<String> = opts
        .caches
        .iter()
        .filter(|(_, claim)| !found.iter().any(|c| &c.metadata.name == claim))
        .map(|(name, claim)| format!("`{claim}` (cache `{name}`)"))
        .collect();
    if missing.is_empty() {
        CheckOutcome::Ok(format!("{} claim(s) found in `{ns}`", opts.caches.len()))
    } else {
        CheckOutcome::Fail(format!(
            "missing in `{ns}`: {}; a step mounting one stays pending until it exists",
            missing.join(", ")
        ))
    }
}

async fn authentication(client: &Client) -> CheckOutcome {
    let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
    match reviews.create(&SelfSubjectReview::default()).await {
        Ok(review) => {
            let user = review.status.unwrap_or_default().user_info.username;
            if user == ANONYMOUS {
                CheckOutcome::Fail(format!("the apiserver sees no credentials: we are {ANONYMOUS}"))
            } else {
                CheckOutcome::Ok(format!("as {user}"))
            }
        }
        Err(e) if e.is_unauthorized() => CheckOutcome::Fail(format!("credentials rejected: {}", one_line(&e))),
        Err(e) if e.message().contains(ANONYMOUS) => {
            CheckOutcome::Fail(format!("the apiserver sees no credentials: {}", one_line(&e)))
        }
        // The apiserver authenticates before it routes or authorizes: any other answer (404 on
        // clusters older than 1.28, 403 where reviews are locked down) means it accepted us.
        Err(Error::Api { status, .. }) => {
            CheckOutcome::Ok(format!("credentials accepted (SelfSubjectReview: {})", status.code))
        }
        Err(e) => CheckOutcome::Fail(format!("could not ask: {}", one_line(&e))),
    }
}

async fn namespace(client: &Client, opts: &PreflightOptions) -> CheckOutcome {
    if opts.namespace_per_org {
        return CheckOutcome::Ok(format!("`{}-<org>` namespaces are created on demand", opts.namespace));
    }
    let ns = &opts.namespace;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.get_opt(ns).await {
        Ok(Some(_)) => CheckOutcome::Ok(format!("`{ns}` exists")),
        Ok(None) => CheckOutcome::Fail(format!("`{ns}` does not exist: `kubectl create namespace {ns}`")),
        // A Role cannot grant `get namespaces` (cluster-scoped), so the agent's own account
        // usually cannot look. Its own namespace exists by definition.
        Err(e) if e.is_forbidden() && ns == client.default_namespace() => {
            CheckOutcome::Ok(format!("`{ns}` (our own namespace; not readable with a Role)"))
        }
        Err(e) if e.is_forbidden() => CheckOutcome::Warn(format!(
            "cannot tell whether `{ns}` exists (get namespaces is forbidden)"
        )),
        Err(e) => CheckOutcome::Fail(format!("cannot read namespace `{ns}`: {}", one_line(&e))),
    }
}
