//! A one-shot "stop now" signal that many tasks can wait on.

use futures::FutureExt;
use tokio::sync::watch;

use crate::controllers::StopSignal;

/// A latch: once triggered it stays triggered, and every waiter wakes.
#[derive(Clone, Debug)]
pub struct Latch {
    tx: watch::Sender<bool>,
}

impl Default for Latch {
    fn default() -> Self {
        Self::new()
    }
}

impl Latch {
    /// A latch that has not been triggered.
    pub fn new() -> Self {
        Latch {
            tx: watch::Sender::new(false),
        }
    }

    /// Triggers the latch; idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the latch was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once the latch is triggered (at once if it already was).
    pub fn wait(&self) -> StopSignal {
        let mut rx = self.tx.subscribe();
        async move {
            // An error means the sender is gone, which can only happen once
            // every Latch clone was dropped: nothing can trigger it any more,
            // so stopping is the safe answer.
            let _ = rx.wait_for(|v| *v).await;
        }
        .boxed()
        .shared()
    }
}

/// Triggers `latch` on SIGTERM (what the kubelet sends) or SIGINT.
pub fn trigger_on_signals(latch: Latch) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        latch.trigger();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_once_triggered_even_late() {
        let l = Latch::new();
        let early = l.wait();
        assert!(!l.is_triggered());
        l.trigger();
        early.await;
        l.wait().await;
        assert!(l.is_triggered());
    }
}
