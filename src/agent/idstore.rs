//! Where the server-assigned agent id is kept across restarts: the agent's Lease in the cluster
//! (no state volume needed), or the Go agent's file (`WOODPECKER_AGENT_CONFIG_FILE`,
//! `{"agent_id": N}`) outside a cluster or without a Lease. With a Lease the file is still read
//! as a fallback and written when it can be, quietly.

use std::path::PathBuf;
use std::sync::Arc;

use super::config;
use super::lease::Held;

pub enum IdStore {
    File(Option<PathBuf>),
    Lease { lease: Arc<Held>, file: Option<PathBuf> },
}

impl IdStore {
    /// The stored id, -1 when there is none.
    pub async fn read(&self) -> i64 {
        match self {
            IdStore::File(path) => config::read_agent_id(path.as_deref()),
            IdStore::Lease { lease, file } => match lease.agent_id().await {
                Some(id) => id,
                None => config::read_agent_id(file.as_deref()),
            },
        }
    }

    /// Stores `id`; `Ok` makes the agent stateful (it keeps its registration on exit). The
    /// error says where it could not be stored.
    pub async fn write(&self, id: i64) -> Result<(), String> {
        match self {
            IdStore::File(None) => Err("WOODPECKER_AGENT_CONFIG_FILE is empty".into()),
            IdStore::File(Some(path)) => {
                config::write_agent_id(path, id).map_err(|e| format!("cannot write {}: {e}", path.display()))
            }
            IdStore::Lease { lease, file } => {
                if let Some(path) = file {
                    let _ = config::write_agent_id(path, id);
                }
                lease.set_agent_id(id).await
            }
        }
    }
}
