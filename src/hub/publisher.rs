//! The after-commit publisher: one thread that holds twin events until the store reports
//! their write durable, then fans them out. One copy per event no matter how many subscribers;
//! its backlog is bounded by the store's own limit on uncommitted writes (`Store::ready`).

use super::events::PendingEvent;
use super::{Hub, Inner};
use crate::store::Store;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Weak;

/// Sending side kept by the hub.
pub(crate) type EventQueue = Sender<(u64, PendingEvent)>;

/// Starts the publisher thread for a hub; it ends when the hub is dropped.
pub(crate) fn start(inner: Weak<Inner>, store: Store, rx: Receiver<(u64, PendingEvent)>) {
    let spawned = std::thread::Builder::new()
        .name("edgetwin-events".into())
        .spawn(move || {
            while let Ok((seq, event)) = rx.recv() {
                if !store.is_durable(seq) && smol::block_on(store.durable(seq)).is_err() {
                    // The write failed (store is fail-stop): the change never happened.
                    continue;
                }
                let Some(inner) = inner.upgrade() else { return };
                Hub { inner }.fan_out(&event);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the event publisher thread");
    }
}

impl Hub {
    /// Hands an event to the publisher; delivered once `seq` is durable.
    pub(crate) fn queue_after_commit(&self, seq: u64, event: PendingEvent) {
        if self.inner.events.send((seq, event)).is_err() {
            tracing::error!("event publisher is gone; event dropped");
        }
    }
}
