//! One Lease per agent identity, held while the process lives, as client-go's leader election
//! holds one: `holderIdentity` (this process: host, pid and a fresh id), `leaseDurationSeconds`,
//! `acquireTime` and `leaseTransitions` (set when the holder changes), `renewTime` (every third
//! of the duration). Taking it over is an update with the resourceVersion read, so of two
//! processes racing for it exactly one wins. A second live process with the same identity waits
//! here, saying who holds it, and runs no work until the holder stops renewing.
//!
//! The Lease also keeps the server-assigned agent id (an annotation), so a pod needs no state
//! volume. Names and labels, and reaping what dead holders left, are the backend's
//! (`crate::backend::reaper`).

use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::backend::reaper::{self, AGENT_ID_ANNOTATION, Holder};
use crate::log;
use crate::shutdown::{self, Shutdown, Trigger};
use kube::Api;
use kube::params::{DeleteParams, Preconditions};
use kube::types::{Lease, LeaseSpec, ObjectMeta, micro_time};

/// How often a waiting process says again who holds the Lease.
const WAIT_LOG_EVERY: Duration = Duration::from_secs(30);

/// What to hold.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// The base namespace (`WOODPECKER_BACKEND_K8S_NAMESPACE`).
    pub namespace: String,
    /// The agent identity (the hostname, or an exec run's id): the agent label of its objects.
    pub agent: String,
    pub holder: Holder,
    /// This process, as `holderIdentity`.
    pub identity: String,
    pub duration: Duration,
}

/// Why no Lease is held.
#[derive(Debug)]
pub enum LeaseError {
    /// The identity has no label form (`WOODPECKER_HOSTNAME` of only punctuation).
    NoName {
        agent: String,
    },
    Kube {
        action: String,
        source: kube::Error,
    },
}

impl std::fmt::Display for LeaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseError::NoName { agent } => write!(f, "agent identity {agent:?} gives no Lease name"),
            LeaseError::Kube { action, .. } => f.write_str(action),
        }
    }
}

impl std::error::Error for LeaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LeaseError::NoName { .. } => None,
            LeaseError::Kube { source, .. } => Some(source),
        }
    }
}

impl LeaseError {
    /// RBAC without leases (a Role from before leases): the caller may run on without one.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, LeaseError::Kube { source, .. } if source.is_forbidden())
    }
}

/// A process identity for `holderIdentity`: `<host>_<pid>_<fresh id>` (in a container the pid
/// is often 1, so the fresh id tells restarts apart).
pub fn process_identity(host: &str) -> String {
    let fresh = crate::pipeline::ulid::new().to_lowercase();
    format!("{host}_{}_{}", std::process::id(), &fresh[fresh.len() - 8..])
}

fn now_micro() -> String {
    let (s, n) = reaper::now();
    micro_time(s, n)
}

/// A Lease this process holds. Renewed by [`Held::keep`]; [`Held::lost`] fires when another
/// process took it or it could not be renewed before it ran out.
pub struct Held {
    api: Api<Lease>,
    opts: LeaseOptions,
    name: String,
    /// The Lease as last written by us (its resourceVersion is what the next update expects).
    state: Mutex<Lease>,
    lost_trigger: Trigger,
    lost: Shutdown,
    why_lost: StdMutex<Option<String>>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("lease", &self.name)
            .finish_non_exhaustive()
    }
}

/// Takes the Lease of `opts.agent`, waiting while another live process holds it. `Ok(None)`
/// when `shutdown` fired while waiting.
pub async fn acquire(
    client: kube::Client,
    opts: LeaseOptions,
    mut shutdown: Shutdown,
) -> Result<Option<Arc<Held>>, LeaseError> {
    let name = reaper::lease_name(&opts.agent).ok_or_else(|| LeaseError::NoName {
        agent: opts.agent.clone(),
    })?;
    let api: Api<Lease> = Api::namespaced(client, &opts.namespace);
    let what = format!("lease {}/{name}", opts.namespace);
    let secs = opts.duration.as_secs().max(1) as i32;
    let mut last_said: Option<Instant> = None;
    loop {
        let now = now_micro();
        let current = api.get_opt(&name).await.map_err(|source| LeaseError::Kube {
            action: format!("read {what}"),
            source,
        })?;
        let written = match current {
            None => {
                let mut lease = Lease::new(ObjectMeta {
                    name: name.clone(),
                    labels: reaper::lease_labels(&opts.agent, opts.holder),
                    ..ObjectMeta::default()
                });
                lease.spec = LeaseSpec {
                    holder_identity: Some(opts.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                };
                api.create(&lease).await
            }
            Some(lease) => {
                let holder = lease.spec.holder_identity.clone().unwrap_or_default();
                if !holder.is_empty() && holder != opts.identity && reaper::is_live(&lease, reaper::now()) {
                    if last_said.is_none_or(|t| t.elapsed() >= WAIT_LOG_EVERY) {
                        last_said = Some(Instant::now());
                        let left = reaper::expiry(&lease) - {
                            let (s, n) = reaper::now();
                            s as f64 + f64::from(n) / 1e9
                        };
                        log::log(
                            log::Level::WARN,
                            &[("holder", log::LogValue::Str(&holder))],
                            format_args!(
                                "{what} is held by {holder:?} (it runs out in {left:.0}s unless renewed): another live \
                                 process runs as agent {:?}; this one waits and runs no work until that one stops \
                                 (give each replica its own WOODPECKER_HOSTNAME, or none: a StatefulSet's pod names differ)",
                                opts.agent
                            ),
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(retry_period(opts.duration)) => {}
                        _ = shutdown.wait() => return Ok(None),
                    }
                    continue;
                }
                let mut taken = lease.clone();
                taken
                    .metadata
                    .labels
                    .extend(reaper::lease_labels(&opts.agent, opts.holder));
                let transitions = lease.spec.lease_transitions.unwrap_or(0);
                taken.spec = LeaseSpec {
                    holder_identity: Some(opts.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(if holder == opts.identity {
                        transitions
                    } else {
                        transitions + 1
                    }),
                };
                if !holder.is_empty() && holder != opts.identity {
                    log::info(format_args!(
                        "took over {what} from {holder:?}, which stopped renewing it"
                    ));
                }
                api.replace(&taken).await
            }
        };
        match written {
            Ok(lease) => {
                let (lost_trigger, lost) = shutdown::channel();
                return Ok(Some(Arc::new(Held {
                    api,
                    opts,
                    name,
                    state: Mutex::new(lease),
                    lost_trigger,
                    lost,
                    why_lost: StdMutex::new(None),
                })));
            }
            // Someone else wrote it between our read and our write: read again.
            Err(e) if e.is_conflict() || e.is_already_exists() => continue,
            Err(source) => {
                return Err(LeaseError::Kube {
                    action: format!("take {what}"),
                    source,
                });
            }
        }
    }
}

/// How long a waiting process sleeps between looks: client-go's 2 s, shorter for short Leases.
fn retry_period(duration: Duration) -> Duration {
    (duration / 3).min(Duration::from_secs(2))
}

impl Held {
    /// `namespace/name`.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.opts.namespace, self.name)
    }

    /// Fires when the Lease is no longer ours; [`Held::why_lost`] says why.
    pub fn lost(&self) -> Shutdown {
        self.lost.clone()
    }

    pub fn why_lost(&self) -> Option<String> {
        self.why_lost.lock().unwrap().clone()
    }

    fn lose(&self, why: String) {
        *self.why_lost.lock().unwrap() = Some(why);
        self.lost_trigger.fire();
    }

    /// The agent id the server assigned to this identity earlier, if the Lease keeps one.
    pub async fn agent_id(&self) -> Option<i64> {
        let state = self.state.lock().await;
        state.metadata.annotations.get(AGENT_ID_ANNOTATION)?.parse().ok()
    }

    /// Writes `f`'s change to our Lease; on a conflict re-reads it and, while it is still ours,
    /// applies `f` again.
    async fn update(&self, f: impl Fn(&mut Lease)) -> Result<(), String> {
        let mut state = self.state.lock().await;
        for _ in 0..5 {
            let mut next = state.clone();
            f(&mut next);
            match self.api.replace(&next).await {
                Ok(written) => {
                    *state = written;
                    return Ok(());
                }
                Err(e) if e.is_conflict() => {
                    let fresh = self
                        .api
                        .get(&self.name)
                        .await
                        .map_err(|e| format!("read lease {}: {e}", self.describe()))?;
                    let holder = fresh.spec.holder_identity.clone().unwrap_or_default();
                    if holder != self.opts.identity {
                        return Err(format!("lease {} is now held by {holder:?}", self.describe()));
                    }
                    *state = fresh;
                }
                Err(e) if e.is_not_found() => {
                    return Err(format!("lease {} was deleted", self.describe()));
                }
                Err(e) => return Err(format!("update lease {}: {e}", self.describe())),
            }
        }
        Err(format!("lease {}: kept changing under us", self.describe()))
    }

    /// Stores the server-assigned agent id in the Lease.
    pub async fn set_agent_id(&self, id: i64) -> Result<(), String> {
        self.update(|l| {
            l.metadata
                .annotations
                .insert(AGENT_ID_ANNOTATION.to_string(), id.to_string());
        })
        .await
    }

    /// Renews every third of the duration until `shutdown`. Another holder, a deleted Lease, or
    /// no successful renewal within two thirds of the duration: [`Held::lost`] fires and this
    /// returns.
    pub async fn keep(self: Arc<Self>, mut shutdown: Shutdown) {
        let every = self.opts.duration / 3;
        // As client-go's renew deadline: give up before others may take it over, so that two
        // processes do not both run work (a starved or cut-off process stops itself first).
        let deadline = self.opts.duration * 2 / 3;
        let mut last_ok = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.wait() => return,
            }
            if last_ok.elapsed() > deadline + every {
                self.lose(format!(
                    "not renewed for {:?} (renew deadline {deadline:?} of a {:?} lease)",
                    last_ok.elapsed(),
                    self.opts.duration
                ));
                return;
            }
            match self.update(|l| l.spec.renew_time = Some(now_micro())).await {
                Ok(()) => last_ok = Instant::now(),
                Err(why) if why.contains("now held by") || why.contains("was deleted") => {
                    self.lose(why);
                    return;
                }
                Err(why) => {
                    if last_ok.elapsed() >= deadline {
                        self.lose(format!(
                            "not renewed within the renew deadline {deadline:?} (last error: {why})"
                        ));
                        return;
                    }
                    log::warn(format_args!("renewing {}: {why}; retrying", self.describe()));
                }
            }
        }
    }

    /// Gives the Lease up at a clean exit: an agent's is released (no holder, so the next
    /// process of this identity takes it at once; the agent id stays), an exec run's deleted.
    pub async fn release(&self) {
        if self.lost.is_fired() {
            return;
        }
        let result = match self.opts.holder {
            Holder::Agent => {
                self.update(|l| {
                    l.spec.holder_identity = None;
                    l.spec.lease_duration_seconds = Some(1);
                    l.spec.renew_time = Some(now_micro());
                })
                .await
            }
            Holder::Exec => {
                let state = self.state.lock().await;
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(state.metadata.uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match self.api.delete(&self.name, &params).await {
                    Err(e) if !e.is_not_found() => Err(format!("delete lease {}: {e}", self.describe())),
                    _ => Ok(()),
                }
            }
        };
        if let Err(why) = result {
            log::warn(format_args!("releasing the lease: {why}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_differ_per_call_and_name_the_host() {
        let a = process_identity("pod-0");
        let b = process_identity("pod-0");
        assert!(a.starts_with(&format!("pod-0_{}_", std::process::id())), "{a}");
        assert_ne!(a, b);
        assert_eq!(retry_period(Duration::from_secs(15)), Duration::from_secs(2));
        assert_eq!(retry_period(Duration::from_secs(3)), Duration::from_secs(1));
    }
}
