//! HTTPS transport to the apiserver (hyper + rustls with ring), retries and timeouts.
//! Placeholder until the client lands.

/// A cheap-to-clone handle to one apiserver.
#[derive(Debug, Clone)]
pub struct Client {}
