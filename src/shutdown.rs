//! A cloneable shutdown signal, and the process signals that fire it. The caller decides what
//! "shutdown" is (SIGTERM in a command, a trigger in tests); every long loop takes a
//! [`Shutdown`] and `select!`s on [`Shutdown::wait`].

use tokio_util::sync::CancellationToken;

/// Fires a [`Shutdown`]; dropping the trigger does not fire it.
#[derive(Debug)]
pub struct Trigger(CancellationToken);

/// Remembers whether shutdown was requested and lets tasks wait for it.
#[derive(Debug, Clone)]
pub struct Shutdown(CancellationToken);

/// A new, unfired pair.
pub fn channel() -> (Trigger, Shutdown) {
    let token = CancellationToken::new();
    (Trigger(token.clone()), Shutdown(token))
}

impl Trigger {
    pub fn fire(&self) {
        self.0.cancel();
    }

    /// A new receiver for this trigger.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.clone())
    }
}

impl Shutdown {
    /// A signal that never fires (for callers with nothing to stop them). Costs one small
    /// allocation, freed with the last clone.
    pub fn never() -> Self {
        Shutdown(CancellationToken::new())
    }

    pub fn is_fired(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Completes once shutdown has been requested; never, if the trigger is dropped unfired.
    pub async fn wait(&mut self) {
        self.0.cancelled().await;
    }
}

/// The signals that ask a command to stop: SIGTERM (Kubernetes, systemd, `kill`) and SIGINT
/// (Ctrl-C). One home for the handlers every command installs.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs both handlers; from now on these signals no longer end the process by default.
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT.
    pub async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_every_clone() {
        let (trigger, shutdown) = channel();
        let mut a = shutdown.clone();
        let mut b = trigger.subscribe();
        assert!(!a.is_fired());
        trigger.fire();
        a.wait().await;
        b.wait().await;
        assert!(shutdown.is_fired());
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_trigger_does_not_fire() {
        let (trigger, mut shutdown) = channel();
        drop(trigger);
        // On the paused clock the timeout fires only once nothing else can run: `wait` is
        // still pending then, not merely slow.
        let waited = tokio::time::timeout(std::time::Duration::from_secs(3600), shutdown.wait()).await;
        assert!(waited.is_err());
        assert!(!shutdown.is_fired());
    }

    #[tokio::test]
    async fn signals_fire_on_sigterm_and_sigint() {
        let mut signals = Signals::install().unwrap();
        for sig in [libc::SIGTERM, libc::SIGINT] {
            // SAFETY: raise sends a signal to this process; both now have tokio's handlers.
            assert_eq!(unsafe { libc::raise(sig) }, 0);
            tokio::time::timeout(std::time::Duration::from_secs(10), signals.next())
                .await
                .expect("the signal arrives");
        }
    }
}
