//! A bounded queue between the reader and the flow workers that waits without spinning.
//!
//! `std::sync::mpsc` spins before it parks a waiting thread; with a reader and N workers on N
//! cores that spinning takes the CPU from the thread that would fill the queue (a profile of
//! two workers on two cores showed a quarter of the time in it). Items here are whole batches,
//! so a mutex and two condition variables cost nothing that matters.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    receiver: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    cap: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panicking worker poisons nothing we rely on: the queue's state stays consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending side; cloned for each producer.
pub struct Sender<T>(Arc<Shared<T>>);

/// The receiving side.
pub struct Receiver<T>(Arc<Shared<T>>);

/// A queue holding at most `cap` items.
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::with_capacity(cap),
            senders: 1,
            receiver: true,
        }),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
        cap: cap.max(1),
    });
    (Sender(shared.clone()), Receiver(shared))
}

/// Why an item was not queued.
pub enum TrySendError<T> {
    /// The queue is full; the item comes back.
    Full(T),
    /// The receiver is gone; the item comes back.
    Disconnected(T),
}

impl<T> Sender<T> {
    /// Queues `item`, waiting while the queue is full; `Err` with the item when the receiver
    /// is gone.
    pub fn send(&self, item: T) -> Result<(), T> {
        let mut s = self.0.lock();
        while s.receiver && s.items.len() >= self.0.cap {
            s = self.0.not_full.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        self.push(s, item).map_err(|e| match e {
            TrySendError::Full(item) | TrySendError::Disconnected(item) => item,
        })
    }

    /// Queues `item`, waiting at most `timeout` for room.
    pub fn send_timeout(&self, item: T, timeout: Duration) -> Result<(), TrySendError<T>> {
        let mut s = self.0.lock();
        if s.receiver && s.items.len() >= self.0.cap {
            s = self
                .0
                .not_full
                .wait_timeout(s, timeout)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        self.push(s, item)
    }

    /// Queues `item` if there is room now.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        self.push(self.0.lock(), item)
    }

    /// Queues `item` under the lock `s` if the receiver is there and there is room.
    fn push(&self, mut s: MutexGuard<'_, State<T>>, item: T) -> Result<(), TrySendError<T>> {
        if !s.receiver {
            return Err(TrySendError::Disconnected(item));
        }
        if s.items.len() >= self.0.cap {
            return Err(TrySendError::Full(item));
        }
        s.items.push_back(item);
        drop(s);
        self.0.not_empty.notify_one();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.senders -= 1;
        if s.senders == 0 {
            drop(s);
            self.0.not_empty.notify_all();
        }
    }
}

impl<T> Receiver<T> {
    fn take(&self, s: &mut State<T>) -> Option<T> {
        let item = s.items.pop_front();
        if item.is_some() {
            self.0.not_full.notify_one();
        }
        item
    }

    /// The next item, waiting for one; `None` once it is empty and every sender is gone.
    pub fn recv(&self) -> Option<T> {
        let mut s = self.0.lock();
        loop {
            if let Some(item) = self.take(&mut s) {
                return Some(item);
            }
            if s.senders == 0 {
                return None;
            }
            s = self.0.not_empty.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The next item if there is one now.
    pub fn try_recv(&self) -> Option<T> {
        self.take(&mut self.0.lock())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.0.lock().receiver = false;
        self.0.not_full.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_order_and_the_end_is_seen() {
        let (tx, rx) = bounded(2);
        let producer = std::thread::spawn(move || {
            for i in 0..1000 {
                tx.send(i).map_err(|_| "receiver gone").unwrap();
            }
        });
        let got: Vec<i32> = std::iter::from_fn(|| rx.recv()).collect();
        producer.join().unwrap();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_queue_refuses_and_a_gone_receiver_fails_the_sender() {
        let (tx, rx) = bounded(1);
        assert!(tx.try_send(1).is_ok());
        assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(rx.try_recv(), None);
        // Room again: a sender waiting with a deadline gets in; a full queue sends it back.
        assert!(tx.send_timeout(2, Duration::from_millis(1)).is_ok());
        assert!(matches!(
            tx.send_timeout(3, Duration::from_millis(1)),
            Err(TrySendError::Full(3))
        ));
        assert_eq!(rx.try_recv(), Some(2));
        drop(rx);
        assert!(matches!(tx.try_send(3), Err(TrySendError::Disconnected(3))));
        assert_eq!(tx.send(4), Err(4));
    }

    #[test]
    fn a_blocked_sender_wakes_when_the_receiver_takes() {
        let (tx, rx) = bounded(1);
        tx.send(0).map_err(|_| ()).unwrap();
        let t = std::thread::spawn(move || tx.send(1).is_ok());
        assert_eq!(rx.recv(), Some(0));
        assert_eq!(rx.recv(), Some(1));
        assert!(t.join().unwrap());
        assert_eq!(rx.recv(), None);
    }
}
