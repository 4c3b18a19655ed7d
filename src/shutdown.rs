//! A cloneable shutdown signal. The caller decides what "shutdown" is (SIGTERM in `main`, a
//! oneshot in tests); every long loop takes a [`Shutdown`] and `select!`s on [`Shutdown::wait`].

use tokio::sync::watch;

/// Fires a [`Shutdown`]; dropping the trigger does not fire it.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// Remembers whether shutdown was requested and lets tasks wait for it.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new, unfired pair.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }

    /// A new receiver for this trigger.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// A signal that never fires (for callers with nothing to stop them).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        // Keep the sender alive forever so `wait` stays pending instead of seeing a closed channel.
        std::mem::forget(tx);
        Shutdown(rx)
    }

    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once shutdown has been requested. If the trigger is dropped unfired, it never
    /// completes.
    pub async fn wait(&mut self) {
        if self.0.wait_for(|fired| *fired).await.is_err() {
            std::future::pending::<()>().await;
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

    #[tokio::test]
    async fn dropped_trigger_does_not_fire() {
        let (trigger, mut shutdown) = channel();
        drop(trigger);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), shutdown.wait()).await;
        assert!(waited.is_err());
    }
}
