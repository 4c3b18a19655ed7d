//! Orphans are reaped by whoever is alive. Every agent (and every `exec`) holds a Lease
//! (`coordination.k8s.io/v1`) in the base namespace, labelled with its agent label value. This
//! module names those Leases, decides when one is dead, and deletes what a dead holder left:
//! every pod (first, grace 0, so a workflow the server hands to another agent is not still
//! running here), Secret, Service and claim carrying that agent label. Never anything of an agent
//! whose Lease is live, nor anything created after the dead holder's Lease ran out (a new holder
//! of the same identity made it). An `exec` Lease is deleted once nothing of its run is left;
//! an agent's stays (it keeps the server-assigned agent id for the next process of that name).
//!
//! Holding and renewing a Lease is the agent's business (`crate::agent::lease`); this is the
//! backend's half: object kinds, labels and deletes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::lifecycle::KubeIo;
use super::names::{self, AGENT_LABEL, TASK_LABEL};
use crate::log;
use crate::shutdown::Shutdown;
use kube::params::{DeleteParams, Preconditions};
use kube::time::{Stamp, parse_rfc3339};
use kube::types::{Lease, PersistentVolumeClaim, Pod, Resource, Secret, Service};

/// `agent` or `exec`: who holds a Lease. Only Leases carrying it are read by the reaper.
pub const LEASE_LABEL: &str = "woodpecker-k8s-agent/lease";
/// Where an agent's Lease keeps the agent id the server assigned (`"42"`).
pub const AGENT_ID_ANNOTATION: &str = "woodpecker-k8s-agent/agent-id";

/// `WOODPECKER_BACKEND_K8S_LEASE_DURATION`: how long a Lease holds without renewal.
pub const LEASE_DURATION_VAR: &str = "WOODPECKER_BACKEND_K8S_LEASE_DURATION";
/// `WOODPECKER_BACKEND_K8S_REAP_GRACE`: how long after a Lease ran out its objects are reaped.
pub const REAP_GRACE_VAR: &str = "WOODPECKER_BACKEND_K8S_REAP_GRACE";
/// `WOODPECKER_BACKEND_K8S_REAP_INTERVAL`: how often every agent looks for dead Leases.
pub const REAP_INTERVAL_VAR: &str = "WOODPECKER_BACKEND_K8S_REAP_INTERVAL";

/// Who holds a Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Agent,
    Exec,
}

impl Holder {
    pub fn as_str(self) -> &'static str {
        match self {
            Holder::Agent => "agent",
            Holder::Exec => "exec",
        }
    }
}

/// The Lease of agent identity `agent` (the hostname, or an `exec` run id): `wp-agent-<agent
/// label value>`, or `None` when the identity has no label form.
pub fn lease_name(agent: &str) -> Option<String> {
    let value = names::to_label_value(agent);
    if value.is_empty() {
        return None;
    }
    let name = format!("wp-agent-{value}");
    if names::is_dns_subdomain(&name) {
        return Some(name);
    }
    // `_` is a label character but no name character: replaced, with the hash of the label
    // value so that `a_b` and `a-b` stay two Leases.
    let digest = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
    let hash: String = digest.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("wp-agent-{}-{hash}", value.replace('_', "-")))
}

/// The labels of that Lease: the agent label (the same value its objects carry) and who holds it.
pub fn lease_labels(agent: &str, holder: Holder) -> BTreeMap<String, String> {
    BTreeMap::from([
        (AGENT_LABEL.to_string(), names::to_label_value(agent)),
        (LEASE_LABEL.to_string(), holder.as_str().to_string()),
    ])
}

/// The timings of Leases and reaping. Defaults: a 15 s Lease renewed every 5 s, reaped 10 s after
/// it ran out, looked for every 10 s: a crashed agent's pods are gone within about 35 s, well
/// before Woodpecker's server hands its workflow to another agent (one minute without Extend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaperSettings {
    pub lease_duration: Duration,
    /// Also absorbs clock skew between agents: a Lease's times are its holder's clock.
    pub grace: Duration,
    pub interval: Duration,
}

impl Default for ReaperSettings {
    fn default() -> Self {
        ReaperSettings {
            lease_duration: Duration::from_secs(15),
            grace: Duration::from_secs(10),
            interval: Duration::from_secs(10),
        }
    }
}

impl ReaperSettings {
    /// Reads the three variables (seconds or a Go duration); unset keeps the default. The Lease
    /// needs at least one second (its field is whole seconds).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ReaperSettings, super::lifecycle::SettingsError> {
        let mut s = ReaperSettings::default();
        for (var, slot) in [
            (LEASE_DURATION_VAR, &mut s.lease_duration),
            (REAP_GRACE_VAR, &mut s.grace),
            (REAP_INTERVAL_VAR, &mut s.interval),
        ] {
            if let Some(value) = lookup(var).filter(|v| !v.trim().is_empty()) {
                let d =
                    crate::go::duration::setting(value.trim(), true).map_err(|_| super::lifecycle::SettingsError {
                        var,
                        value: value.clone(),
                    })?;
                if (var == REAP_INTERVAL_VAR && d.is_zero())
                    || (var == LEASE_DURATION_VAR && d < Duration::from_secs(1))
                {
                    return Err(super::lifecycle::SettingsError { var, value });
                }
                *slot = d;
            }
        }
        Ok(s)
    }
}

/// Now, as the Lease times count it.
pub fn now() -> Stamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

fn seconds(s: Stamp) -> f64 {
    s.0 as f64 + f64::from(s.1) / 1e9
}

/// When the Lease runs (or ran) out, in seconds since the epoch: its renew time (else acquire
/// time, else creation) plus its duration; a released Lease (no holder) ran out at its renew time.
pub fn expiry(lease: &Lease) -> f64 {
    let spec = &lease.spec;
    let renewed = [
        spec.renew_time.as_deref(),
        spec.acquire_time.as_deref(),
        lease.metadata.creation_timestamp.as_deref(),
    ]
    .into_iter()
    .flatten()
    .find_map(parse_rfc3339)
    .map(seconds)
    .unwrap_or(0.0);
    if spec.holder_identity.as_deref().unwrap_or("").is_empty() {
        return renewed;
    }
    renewed + f64::from(spec.lease_duration_seconds.unwrap_or(0).max(0))
}

/// Whether `lease` is held by a live holder at `now`.
pub fn is_live(lease: &Lease, now: Stamp) -> bool {
    seconds(now) < expiry(lease)
}

/// One reaped workflow: whose, which task, what went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReapedWorkflow {
    pub agent: String,
    pub task: String,
    /// `pod`, `secret`, `service`, `persistentvolumeclaim` with how many of each.
    pub objects: BTreeMap<&'static str, usize>,
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct Pass {
    pub workflows: Vec<ReapedWorkflow>,
    /// Dead agents whose objects were looked at.
    pub dead_agents: Vec<String>,
    pub leases_deleted: usize,
    /// Deletes or lists that failed (`what: error`), to be retried next pass.
    pub failures: Vec<String>,
}

/// Reaps for one agent (or exec run).
#[derive(Debug, Clone)]
pub struct Reaper {
    kube: KubeIo,
    /// Where the Leases live: the base namespace.
    lease_ns: String,
    /// Where objects live: the base namespace, or `None` for every namespace (namespace per org).
    objects_ns: Option<String>,
    /// This process's own agent label value: never reaped here.
    own: String,
    settings: ReaperSettings,
    /// Dead agents found with nothing left, by the resourceVersion of their Lease: skipped until
    /// the Lease changes (only a new holder can create objects again), so a scaled-away agent's
    /// Lease costs one list per pass, not four.
    clean: Arc<Mutex<HashMap<String, String>>>,
}

impl Reaper {
    pub fn new(
        kube: KubeIo,
        lease_ns: &str,
        objects_ns: Option<&str>,
        own_agent: &str,
        settings: ReaperSettings,
    ) -> Self {
        Reaper {
            kube,
            lease_ns: lease_ns.to_string(),
            objects_ns: objects_ns.map(str::to_string),
            own: names::to_label_value(own_agent),
            settings,
            clean: Arc::default(),
        }
    }

    /// One pass at `now`: every Lease dead for longer than the grace, reaped.
    pub async fn pass(&self, now: Stamp) -> Pass {
        let mut pass = Pass::default();
        let leases = match self.kube.list::<Lease>(Some(&self.lease_ns), LEASE_LABEL).await {
            Ok(l) => l,
            Err(e) => {
                pass.failures.push(format!("list leases in {}: {e}", self.lease_ns));
                return pass;
            }
        };
        let grace = self.settings.grace.as_secs_f64();
        let present: HashSet<&String> = leases
            .iter()
            .filter_map(|l| l.metadata.labels.get(AGENT_LABEL))
            .collect();
        self.clean.lock().unwrap().retain(|agent, _| present.contains(agent));
        for lease in &leases {
            let Some(agent) = lease.metadata.labels.get(AGENT_LABEL).cloned() else {
                continue;
            };
            if agent.is_empty() || agent == self.own || seconds(now) < expiry(lease) + grace {
                continue;
            }
            let rv = &lease.metadata.resource_version;
            if self.clean.lock().unwrap().get(&agent) == Some(rv) {
                continue;
            }
            pass.dead_agents.push(agent.clone());
            if self.reap_agent(lease, &agent, &mut pass).await {
                self.clean.lock().unwrap().insert(agent, rv.clone());
            }
        }
        pass
    }

    /// Deletes what `agent` (whose Lease `lease` is dead) left, pods first. `true` when nothing
    /// of it was there.
    async fn reap_agent(&self, lease: &Lease, agent: &str, pass: &mut Pass) -> bool {
        let selector = format!("{AGENT_LABEL}={agent}");
        // Anything created after the Lease ran out is a new holder's (the same identity came
        // back and acquired it while we were listing): never touched.
        let cutoff = expiry(lease).floor() as i64;
        let mut found = 0;
        let mut per_task: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
        found += self.kind::<Pod>(&selector, cutoff, Some(0), &mut per_task, pass).await;
        found += self.kind::<Secret>(&selector, cutoff, None, &mut per_task, pass).await;
        found += self.kind::<Service>(&selector, cutoff, None, &mut per_task, pass).await;
        found += self
            .kind::<PersistentVolumeClaim>(&selector, cutoff, None, &mut per_task, pass)
            .await;
        for (task, objects) in per_task {
            let w = ReapedWorkflow {
                agent: agent.to_string(),
                task,
                objects,
            };
            let metrics = crate::metrics::global();
            metrics
                .reaped_workflows
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let n: usize = w.objects.values().sum();
            metrics
                .reaped_objects
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            let what: Vec<String> = w.objects.iter().map(|(k, n)| format!("{n} {k}")).collect();
            log::log(
                log::Level::WARN,
                &[
                    ("agent", log::LogValue::Str(&w.agent)),
                    ("task", log::LogValue::Str(&w.task)),
                ],
                format_args!(
                    "reaped workflow {} of agent {} (its lease ran out {:.0}s ago): {}",
                    w.task,
                    w.agent,
                    (seconds(now()) - expiry(lease)).max(0.0),
                    what.join(", ")
                ),
            );
            pass.workflows.push(w);
        }
        let is_exec = lease.metadata.labels.get(LEASE_LABEL).map(String::as_str) == Some(Holder::Exec.as_str());
        if is_exec && found == 0 {
            // Nothing of that run is left (not even a terminating object): its Lease goes too,
            // if nobody changed it since we read it.
            let params = DeleteParams {
                grace_period_seconds: None,
                propagation_policy: None,
                preconditions: Some(Preconditions {
                    uid: Some(lease.metadata.uid.clone()).filter(|u| !u.is_empty()),
                    resource_version: Some(lease.metadata.resource_version.clone()).filter(|r| !r.is_empty()),
                }),
            };
            let api = kube::Api::<Lease>::namespaced(self.kube.client().clone(), &self.lease_ns);
            match api.delete(&lease.metadata.name, &params).await {
                Ok(()) => pass.leases_deleted += 1,
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => pass.failures.push(format!("delete lease {}: {e}", lease.metadata.name)),
            }
        }
        found == 0
    }

    /// Deletes the objects of kind `K` with `selector` created before `cutoff`; returns how many
    /// of that kind exist at all (terminating ones included).
    async fn kind<K: Resource>(
        &self,
        selector: &str,
        cutoff: i64,
        grace: Option<i64>,
        per_task: &mut BTreeMap<String, BTreeMap<&'static str, usize>>,
        pass: &mut Pass,
    ) -> usize {
        let items = match self.kube.list::<K>(self.objects_ns.as_deref(), selector).await {
            Ok(items) => items,
            Err(e) => {
                pass.failures.push(format!("list {} with {selector}: {e}", K::PLURAL));
                return 1; // unknown: keep the Lease
            }
        };
        let found = items.len();
        for item in items {
            let meta = item.meta();
            let created = meta.creation_timestamp.as_deref().and_then(parse_rfc3339);
            if created.is_none_or(|c| c.0 >= cutoff) {
                continue;
            }
            // A terminating pod is deleted again with grace 0; other terminating objects wait
            // for their finalizers.
            let terminating = meta.deletion_timestamp.is_some();
            if terminating && (grace.is_none() || meta.deletion_grace_period_seconds == Some(0)) {
                continue;
            }
            let what = format!("{} {}/{}", K::KIND.to_lowercase(), meta.namespace, meta.name);
            match self.kube.delete::<K>(&meta.namespace, &meta.name, grace).await {
                Ok(()) => {
                    let task = meta.labels.get(TASK_LABEL).cloned().unwrap_or_default();
                    let kind = K::KIND;
                    *per_task.entry(task).or_default().entry(kind_name(kind)).or_default() += 1;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => pass.failures.push(format!("delete {what}: {e}")),
            }
        }
        found
    }

    /// At start and every interval until `shutdown`: one pass, a line per failure.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut tick = tokio::time::interval(self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait() => return,
            }
            let pass = self.pass(now()).await;
            for f in &pass.failures {
                log::warn(format_args!("reaping leftovers of dead agents: {f}"));
            }
            if pass.leases_deleted > 0 {
                log::debug(format_args!(
                    "deleted {} lease(s) of ended exec runs",
                    pass.leases_deleted
                ));
            }
        }
    }
}

fn kind_name(kind: &str) -> &'static str {
    match kind {
        "Pod" => "pod(s)",
        "Secret" => "secret(s)",
        "Service" => "service(s)",
        "PersistentVolumeClaim" => "volume claim(s)",
        _ => "object(s)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::types::{LeaseSpec, ObjectMeta, micro_time};

    fn lease(holder: &str, renewed: i64, duration: i32) -> Lease {
        let mut l = Lease::new(ObjectMeta {
            name: "wp-agent-a".into(),
            labels: lease_labels("a", Holder::Agent),
            creation_timestamp: Some(kube::time::format_seconds(renewed - 100)),
            ..ObjectMeta::default()
        });
        l.spec = LeaseSpec {
            holder_identity: Some(holder.into()).filter(|h: &String| !h.is_empty()),
            lease_duration_seconds: Some(duration),
            renew_time: Some(micro_time(renewed, 500_000_000)),
            ..LeaseSpec::default()
        };
        l
    }

    #[test]
    fn names_and_labels_follow_the_agent_label() {
        let odd = lease_name("Runner_1.example").unwrap();
        assert!(
            odd.starts_with("wp-agent-runner-1.example-") && names::is_dns_subdomain(&odd),
            "{odd}"
        );
        assert_ne!(lease_name("runner-1.example").unwrap(), odd);
        assert_eq!(lease_name("exec-01jx").as_deref(), Some("wp-agent-exec-01jx"));
        assert_eq!(lease_name("..."), None);
        let long = "x".repeat(100);
        let name = lease_name(&long).unwrap();
        assert!(names::is_dns_subdomain(&name) && name.len() <= 9 + 63 + 9, "{name}");
        let labels = lease_labels("Runner_1", Holder::Exec);
        assert_eq!(labels[AGENT_LABEL], "runner_1");
        assert_eq!(labels[LEASE_LABEL], "exec");
    }

    #[test]
    fn a_lease_is_live_until_renew_time_plus_duration_and_a_released_one_is_not() {
        let l = lease("pod-0_1", 1000, 15);
        assert_eq!(expiry(&l), 1015.5);
        assert!(is_live(&l, (1015, 0)));
        assert!(!is_live(&l, (1015, 600_000_000)));
        let released = lease("", 1000, 1);
        assert!(!is_live(&released, (1000, 600_000_000)));
        // No times at all: dead since creation.
        let mut bare = l;
        bare.spec.renew_time = None;
        assert_eq!(expiry(&bare), 900.0 + 15.0);
    }

    #[test]
    fn settings_from_the_environment() {
        let d = ReaperSettings::from_lookup(|_| None).unwrap();
        assert_eq!(d, ReaperSettings::default());
        let s = ReaperSettings::from_lookup(|k| match k {
            LEASE_DURATION_VAR => Some("3s".into()),
            REAP_GRACE_VAR => Some("1".into()),
            REAP_INTERVAL_VAR => Some("500ms".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (s.lease_duration, s.grace, s.interval),
            (
                Duration::from_secs(3),
                Duration::from_secs(1),
                Duration::from_millis(500)
            )
        );
        let bad =
            |k: &'static str, v: &str| ReaperSettings::from_lookup(|x| (x == k).then(|| v.to_string())).unwrap_err();
        assert_eq!(bad(LEASE_DURATION_VAR, "500ms").var, LEASE_DURATION_VAR);
        assert_eq!(bad(REAP_INTERVAL_VAR, "0").var, REAP_INTERVAL_VAR);
        assert_eq!(bad(REAP_GRACE_VAR, "soon").var, REAP_GRACE_VAR);
    }
}
