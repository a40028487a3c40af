//! Launch slots: how many instances may be starting at once, so that a
//! burst of starts (twenty clients opening per-session instances, a host
//! restarting its servers) takes turns on the machine's CPUs instead of
//! spending every server's start-up CPU at the same moment, slowing all of
//! them and the servers already serving.
//!
//! An instance holds a slot from its launch until its handshake is done
//! (or its run ends), for at most [`MAX_HOLD`] (launch and discovery
//! included); launches beyond the slots wait their turn, in order.
//! Admission counts what is starting or waiting from the moment a start is
//! admitted, and refuses a new start once `max_waiting` wait already: the
//! line is bounded, and a client beyond it is told to retry (429) instead
//! of queueing. With the defaults a start at the end of a full line may
//! wait longer than its start timeout (64 waiting, 4 slots, up to 10 s
//! each); the line's length is the operator's trade between the two.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The longest one start holds a slot: its start-up CPU is spent by then,
/// and a server not ready yet waits on something else (the network, a
/// lock, a hang until the handshake deadline), which must not keep every
/// other server from starting.
pub const MAX_HOLD: std::time::Duration = std::time::Duration::from_secs(10);

/// The host's launch slots (`limits.max_concurrent_launches`).
#[derive(Debug)]
pub struct Launches {
    /// `None`: no limit (the default on Kubernetes, whose scheduler places pods).
    slots: Option<Arc<Semaphore>>,
    limit: usize,
    max_waiting: usize,
    /// Admitted starts not yet ready: starting or waiting for a slot.
    pending: Arc<AtomicUsize>,
}

/// An admitted start, counted until its instance is ready or gone.
#[derive(Debug)]
pub struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A slot held while one instance starts; dropping it lets the next start.
#[derive(Debug)]
pub struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    _ticket: Ticket,
}

impl Launches {
    /// `limit` instances starting at once (`None` or 0: no limit), and at
    /// most `max_waiting` admitted starts waiting beyond them.
    pub fn new(limit: Option<usize>, max_waiting: usize) -> Arc<Self> {
        let limit = limit.filter(|n| *n > 0);
        Arc::new(Launches {
            slots: limit.map(|n| Arc::new(Semaphore::new(n))),
            limit: limit.unwrap_or(0),
            max_waiting,
            pending: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// No limit: every launch starts at once.
    pub fn unlimited() -> Arc<Self> {
        Self::new(None, 0)
    }

    /// The CPUs this process may use (its affinity and its control group's
    /// CPU quota): the local runtime's default slots are twice as many.
    pub fn cpus() -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }

    /// Admits one more start, counted from now until its instance is ready
    /// (the ticket), or refuses it once the slots and their waiting line are
    /// full; the refusal names the limits and what to do. Check and count
    /// are one step, so that a burst of starts cannot all pass the check.
    pub fn admit(&self) -> Result<Ticket, String> {
        if self.slots.is_none() {
            return Ok(self.ticket());
        }
        let most = self.limit.saturating_add(self.max_waiting);
        let counted = self.pending.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < most).then_some(n + 1));
        match counted {
            Ok(_) => Ok(Ticket(self.pending.clone())),
            Err(pending) => Err(format!(
                "{pending} server instances are starting or waiting to start, the most this host takes at once \
                 (limits.max_concurrent_launches = {}, limits.max_waiting_launches = {}); \
                 try again when they are up",
                self.limit, self.max_waiting
            )),
        }
    }

    /// Counts a start that needs no admission (a restart, a replacement)
    /// until its instance is ready.
    pub fn ticket(&self) -> Ticket {
        self.pending.fetch_add(1, Ordering::AcqRel);
        Ticket(self.pending.clone())
    }

    /// Waits for a free slot (at once without a limit).
    pub async fn slot(&self, ticket: Ticket) -> Slot {
        let permit = match &self.slots {
            Some(slots) => slots.clone().acquire_owned().await.ok(),
            None => None,
        };
        Slot { _permit: permit, _ticket: ticket }
    }

    /// Admitted starts not yet ready (starting or waiting).
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// The number of slots (0: no limit).
    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_launch_beyond_the_slots_waits_until_an_earlier_one_lets_go() {
        let launches = Launches::new(Some(1), 8);
        let first = launches.slot(launches.ticket()).await;
        let second = launches.slot(launches.ticket());
        tokio::pin!(second);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut second).await.is_err(),
            "the second launch waits while the first holds the only slot"
        );
        drop(first);
        let _second = tokio::time::timeout(Duration::from_secs(5), second).await.expect("the slot is free again");
        assert_eq!(launches.pending(), 1);
    }

    #[tokio::test]
    async fn admission_refuses_once_the_waiting_line_is_full_and_names_both_limits() {
        let launches = Launches::new(Some(2), 1);
        let held: Vec<Ticket> =
            (0..3).map(|_| launches.admit().expect("two starting and one waiting are admitted")).collect();
        let refused = launches.admit().expect_err("a fourth would wait beyond the line");
        assert!(
            refused.contains("3 server instances")
                && refused.contains("limits.max_concurrent_launches = 2")
                && refused.contains("limits.max_waiting_launches = 1"),
            "{refused}"
        );
        drop(held);
        assert_eq!(launches.pending(), 0, "every ticket gave its place back");
        launches.admit().expect("admitted again once the others are up");
    }

    #[test]
    fn a_burst_of_admissions_from_many_threads_never_passes_the_line() {
        let launches = Launches::new(Some(2), 3);
        let admitted: Vec<Ticket> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..16)
                .map(|_| s.spawn(|| (0..50).filter_map(|_| launches.admit().ok()).collect::<Vec<_>>()))
                .collect();
            threads.into_iter().flat_map(|t| t.join().unwrap_or_default()).collect()
        });
        assert_eq!(admitted.len(), 5, "the slots and the line, not one more");
        assert_eq!(launches.pending(), 5);
    }

    #[tokio::test]
    async fn a_slot_gives_its_place_back_when_its_instance_is_ready() {
        let launches = Launches::new(Some(1), 0);
        let slot = launches.slot(launches.ticket()).await;
        assert!(launches.admit().is_err(), "one starting, none may wait");
        drop(slot);
        assert!(launches.admit().is_ok());
    }

    #[tokio::test]
    async fn without_a_limit_nothing_waits_and_nothing_is_refused() {
        for launches in [Launches::unlimited(), Launches::new(Some(0), 0)] {
            let slots: Vec<Slot> =
                futures_util::future::join_all((0..100).map(|_| launches.slot(launches.ticket()))).await;
            assert_eq!(slots.len(), 100);
            assert!(launches.admit().is_ok());
            assert_eq!(launches.limit(), 0);
        }
    }
}
