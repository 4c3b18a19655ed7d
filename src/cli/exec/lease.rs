//! `exec` holds a Lease like an agent (a fresh identity per run), so a later `exec` or agent
//! reaps what a killed run left once its Lease has run out; and it reaps, while it runs, what
//! dead agents and runs left in its namespace.

use std::sync::Arc;

use crate::agent::lease::{self, Held};
use crate::backend::lifecycle::KubeIo;
use crate::backend::options::Options;
use crate::backend::reaper::{self, Holder, Reaper};
use crate::shutdown::Shutdown;

/// Takes the run's Lease and starts renewing it and reaping, both until `stop`. `None` (with a
/// warning) when the cluster refuses Leases: the run goes on unprotected.
pub async fn hold(kube: &KubeIo, opts: &Options, agent: &str, stop: Shutdown) -> Option<Arc<Held>> {
    let settings = match reaper::ReaperSettings::from_lookup(|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: {e}; using the default lease timings");
            reaper::ReaperSettings::default()
        }
    };
    let opts_lease = lease::LeaseOptions {
        namespace: opts.namespace.clone(),
        agent: agent.to_string(),
        holder: Holder::Exec,
        identity: lease::process_identity(agent),
        duration: settings.lease_duration,
    };
    match lease::acquire(kube.client().clone(), opts_lease, stop.clone()).await {
        Ok(Some(held)) => {
            tokio::spawn(held.clone().keep(stop.clone()));
            let objects_ns = (!opts.namespace_per_org).then_some(opts.namespace.as_str());
            tokio::spawn(Reaper::new(kube.clone(), &opts.namespace, objects_ns, agent, settings).run(stop));
            Some(held)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!(
                "warning: no lease for this run ({}): if it is killed, its objects stay until deleted by hand",
                crate::error_chain::one_line(&e)
            );
            None
        }
    }
}
