//! Bounded mailboxes: a data lane of batches and a small control lane.
//!
//! [`Addr`] is the typed, cloneable address of an actor; the matching [`Inbox`] is
//! owned by the actor's task. The channel underneath is an implementation detail.
//!
//! # Backpressure
//!
//! [`Addr::send`] waits while the data lane is full, and reports how long it waited
//! so the sending actor's `backpressure` time can be measured. [`Addr::try_send`]
//! never waits and never loses the batch: when the lane is full it is handed back
//! in [`TrySendError::Full`].
//!
//! # Shutdown
//!
//! An actor's data lane closes when every [`Addr`] pointing at it is dropped; the
//! actor then drains what is queued, flushes and closes. A batch sent to an actor
//! that is gone is dropped, which fails its ack.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::batch::Batch;
use crate::error::MailboxClosed;

/// Capacity of the control lane of every mailbox.
pub const CONTROL_CAPACITY: usize = 8;

/// A message on the control lane; served before any queued data.
#[derive(Debug)]
pub enum Control {
    /// Flush buffered state now; the sender is told when the flush completed.
    Flush(Option<tokio::sync::oneshot::Sender<()>>),
}

/// [`Addr::try_send`] could not enqueue the batch.
#[derive(Debug)]
pub enum TrySendError<T> {
    /// The data lane is full; the batch is handed back untouched.
    Full(Batch<T>),
    /// The receiving actor is gone; the batch is handed back untouched.
    Closed(Batch<T>),
}

/// The typed address of an actor taking batches of `T`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use spate_engine::{mailbox, Batch};
/// let (addr, mut inbox) = mailbox::<Vec<u32>>("printer", 4);
/// addr.send(Batch::unacked(vec![7])).await.unwrap();
/// assert_eq!(inbox.recv().await.unwrap().payload, vec![7]);
/// # });
/// ```
pub struct Addr<T> {
    name: Arc<str>,
    data: kanal::AsyncSender<Batch<T>>,
    /// One control lane per worker (one for a plain actor, N for a pool).
    control: Arc<[tokio::sync::mpsc::Sender<Control>]>,
}

impl<T> Clone for Addr<T> {
    fn clone(&self) -> Self {
        Addr {
            name: self.name.clone(),
            data: self.data.clone(),
            control: self.control.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Addr<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Addr").field("actor", &self.name).finish()
    }
}

/// The receiving end of a mailbox, owned by one actor.
pub struct Inbox<T> {
    name: Arc<str>,
    pub(crate) data: kanal::AsyncReceiver<Batch<T>>,
    pub(crate) control: tokio::sync::mpsc::Receiver<Control>,
    capacity: usize,
}

/// Creates a mailbox holding at most `capacity` batches (at least 1).
pub fn mailbox<T: Send + 'static>(name: &str, capacity: usize) -> (Addr<T>, Inbox<T>) {
    let (addr, mut inboxes) = shared_mailbox(name, capacity, 1);
    (addr, inboxes.remove(0))
}

/// Creates one mailbox drained by `workers` inboxes competing for its batches
/// (each batch goes to exactly one of them), each with its own control lane.
pub fn shared_mailbox<T: Send + 'static>(
    name: &str,
    capacity: usize,
    workers: usize,
) -> (Addr<T>, Vec<Inbox<T>>) {
    let capacity = capacity.max(1);
    let (data_tx, data_rx) = kanal::bounded_async(capacity);
    let name: Arc<str> = Arc::from(name);
    let mut controls = Vec::new();
    let mut inboxes = Vec::new();
    for _ in 0..workers.max(1) {
        let (control_tx, control_rx) = tokio::sync::mpsc::channel(CONTROL_CAPACITY);
        controls.push(control_tx);
        inboxes.push(Inbox {
            name: name.clone(),
            data: data_rx.clone(),
            control: control_rx,
            capacity,
        });
    }
    let addr = Addr {
        name,
        data: data_tx,
        control: controls.into(),
    };
    (addr, inboxes)
}

impl<T: Send + 'static> Addr<T> {
    /// Name of the actor behind this address.
    pub fn actor(&self) -> &str {
        &self.name
    }

    /// Batches queued in the data lane.
    pub fn depth(&self) -> usize {
        self.data.len()
    }

    /// Sends a batch, waiting while the mailbox is full.
    ///
    /// Returns how long it waited. If the actor is gone the batch is dropped (its
    /// ack fails) and [`MailboxClosed`] is returned.
    pub async fn send(&self, batch: Batch<T>) -> Result<Duration, MailboxClosed> {
        let mut slot = Some(batch);
        match self.data.try_send_option(&mut slot) {
            Ok(true) => return Ok(Duration::ZERO),
            Ok(false) => {}
            Err(_) => return Err(self.closed()),
        }
        let Some(batch) = slot else {
            return Ok(Duration::ZERO);
        };
        let started = Instant::now();
        match self.data.send(batch).await {
            Ok(()) => Ok(started.elapsed()),
            Err(_) => Err(self.closed()),
        }
    }

    /// Enqueues a batch if there is room, without waiting.
    ///
    /// Never loses the batch: on failure it is returned inside the error.
    pub fn try_send(&self, batch: Batch<T>) -> Result<(), TrySendError<T>> {
        let mut slot = Some(batch);
        let outcome = self.data.try_send_option(&mut slot);
        match (outcome, slot) {
            (Ok(true), _) | (Ok(false), None) => Ok(()),
            (Ok(false), Some(b)) => Err(TrySendError::Full(b)),
            (Err(_), Some(b)) => Err(TrySendError::Closed(b)),
            (Err(_), None) => Ok(()),
        }
    }

    /// Asks the actor (every worker of a pool) to flush and waits until it has.
    pub async fn flush(&self) -> Result<(), MailboxClosed> {
        for control in self.control.iter() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            control
                .send(Control::Flush(Some(tx)))
                .await
                .map_err(|_| self.closed())?;
            rx.await.map_err(|_| self.closed())?;
        }
        Ok(())
    }

    pub(crate) fn control_senders(&self) -> Vec<tokio::sync::mpsc::Sender<Control>> {
        self.control.to_vec()
    }

    fn closed(&self) -> MailboxClosed {
        MailboxClosed {
            actor: self.name.to_string(),
        }
    }
}

impl<T: Send + 'static> Inbox<T> {
    /// Name of the owning actor.
    pub fn actor(&self) -> &str {
        &self.name
    }

    /// Batches queued in the data lane.
    pub fn depth(&self) -> usize {
        self.data.len()
    }

    /// Capacity of the data lane.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Receives the next batch; `None` once every sender is gone and the lane is
    /// drained. Control messages are not returned here (actors see them as hooks).
    ///
    /// The future must be driven to completion once polled: dropping it while it
    /// waits can lose a batch that arrives at that instant (its ack then fails).
    pub async fn recv(&mut self) -> Option<Batch<T>> {
        self.data.recv().await.ok()
    }

    /// Takes a batch if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Batch<T>> {
        self.data.try_recv().ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::{Ack, AckToken};

    #[tokio::test(start_paused = true)]
    async fn try_send_hands_back_the_batch_when_full() {
        let (addr, mut inbox) = mailbox::<Vec<u8>>("sink", 1);
        addr.try_send(Batch::unacked(vec![1])).unwrap();
        let (token, mut verdict) = AckToken::channel();
        match addr.try_send(Batch::new(vec![2], Ack::from(token))) {
            Err(TrySendError::Full(b)) => {
                assert_eq!(b.payload, vec![2]);
                assert!(verdict.try_recv().is_err(), "batch was dropped");
                b.deliver();
            }
            other => panic!("expected full, got {other:?}"),
        }
        assert!(verdict.try_recv().unwrap().is_delivered());
        assert_eq!(inbox.recv().await.unwrap().payload, vec![1]);
    }

    #[tokio::test(start_paused = true)]
    async fn send_waits_while_full_and_reports_blocked_time() {
        let (addr, mut inbox) = mailbox::<Vec<u8>>("sink", 1);
        addr.send(Batch::unacked(vec![1])).await.unwrap();
        let receiver = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let a = inbox.recv().await.unwrap();
            let b = inbox.recv().await.unwrap();
            (a.payload, b.payload)
        });
        let blocked = addr.send(Batch::unacked(vec![2])).await.unwrap();
        assert!(blocked >= Duration::from_millis(250), "blocked {blocked:?}");
        assert_eq!(receiver.await.unwrap(), (vec![1], vec![2]));
    }

    #[tokio::test(start_paused = true)]
    async fn closed_mailbox_fails_the_batch() {
        let (addr, inbox) = mailbox::<Vec<u8>>("gone", 1);
        drop(inbox);
        let (token, mut verdict) = AckToken::channel();
        let err = addr
            .send(Batch::new(vec![1], Ack::from(token)))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "mailbox of actor gone is closed");
        assert!(!verdict.try_recv().unwrap().is_delivered());
    }

    #[tokio::test(start_paused = true)]
    async fn receiver_drains_queue_after_senders_drop() {
        let (addr, mut inbox) = mailbox::<Vec<u8>>("sink", 4);
        addr.send(Batch::unacked(vec![1])).await.unwrap();
        addr.send(Batch::unacked(vec![2])).await.unwrap();
        drop(addr);
        assert_eq!(inbox.recv().await.unwrap().payload, vec![1]);
        assert_eq!(inbox.recv().await.unwrap().payload, vec![2]);
        assert!(inbox.recv().await.is_none());
    }
}
