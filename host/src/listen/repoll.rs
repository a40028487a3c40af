//! A connection's future, polled again in place when it wakes itself while
//! it is being polled, rather than handed back to the scheduler.
//!
//! hyper's request body channel wakes the connection's own task each time
//! the handler takes a chunk of the body. A task woken while it runs is,
//! to tokio's multi-threaded scheduler, a task that yielded: it goes to the
//! back of the run queue and an idle worker thread is woken to steal it.
//! That is one `futex` wake of a sleeping thread, and one more trip of the
//! connection's whole future through the scheduler, on every POST. Here the
//! wake is noted instead, and the future is polled again before `poll`
//! returns; a future that keeps waking itself still yields after
//! [`REPOLLS`] rounds, so no connection holds a worker for long.

use futures_util::task::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// Rounds a poll may add for wakes that came during it, before it yields
/// to the scheduler as any task woken while running does.
pub(super) const REPOLLS: usize = 4;

/// Not being polled: a wake goes to the task's waker.
const IDLE: u8 = 0;
/// Being polled: a wake is noted, and the poll goes round again.
const POLLING: u8 = 1;
/// Woken while being polled.
const WOKEN: u8 = 2;

pin_project_lite::pin_project! {
    /// `future`, polled again in place when it wakes itself during a poll.
    pub(super) struct Repoll<F> {
        #[pin]
        future: F,
        flag: Arc<Flag>,
        waker: Waker,
    }
}

/// What the inner future's waker does: note a wake during a poll, pass
/// any other to the task.
struct Flag {
    state: AtomicU8,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self.state.compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) | Err(WOKEN) => {}
            Err(_) => self.task.wake(),
        }
    }
}

impl<F> Repoll<F> {
    /// Wraps `future`.
    pub(super) fn new(future: F) -> Repoll<F> {
        let flag = Arc::new(Flag { state: AtomicU8::new(IDLE), task: AtomicWaker::new() });
        let waker = Waker::from(flag.clone());
        Repoll { future, flag, waker }
    }
}

impl<F: Future> Future for Repoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        this.flag.task.register(cx.waker());
        let mut inner = Context::from_waker(this.waker);
        for _ in 0..=REPOLLS {
            this.flag.state.store(POLLING, Ordering::Release);
            let polled = this.future.as_mut().poll(&mut inner);
            let woken = this.flag.state.swap(IDLE, Ordering::AcqRel) == WOKEN;
            if polled.is_ready() || !woken {
                return polled;
            }
        }
        // Still waking itself: yield, as the scheduler would have had it.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A task waker that counts its wakes.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// What a test future does on each poll; the last step repeats.
    #[derive(Clone, Copy)]
    enum Step {
        WakeItself,
        Wait,
        Ready,
    }

    /// Follows its script; keeps the last waker it was given.
    struct Scripted {
        script: Vec<Step>,
        polls: usize,
        stash: Option<Waker>,
    }

    impl Future for Scripted {
        type Output = usize;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            let step = self.script[self.polls.min(self.script.len() - 1)];
            self.polls += 1;
            self.stash = Some(cx.waker().clone());
            match step {
                Step::WakeItself => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Step::Wait => Poll::Pending,
                Step::Ready => Poll::Ready(self.polls),
            }
        }
    }

    fn scripted(script: &[Step]) -> Pin<Box<Repoll<Scripted>>> {
        Box::pin(Repoll::new(Scripted { script: script.to_vec(), polls: 0, stash: None }))
    }

    fn task() -> (Arc<Counter>, Waker) {
        let counter = Arc::new(Counter::default());
        (counter.clone(), Waker::from(counter))
    }

    #[test]
    fn a_future_that_wakes_itself_while_polled_is_polled_again_without_waking_the_task() {
        let (counter, waker) = task();
        let mut f = scripted(&[Step::WakeItself, Step::WakeItself, Step::Ready]);
        assert_eq!(f.as_mut().poll(&mut Context::from_waker(&waker)), Poll::Ready(3));
        assert_eq!(counter.0.load(Ordering::SeqCst), 0, "the task was never woken");
    }

    #[test]
    fn a_future_that_keeps_waking_itself_yields_to_the_scheduler_after_the_rounds() {
        let (counter, waker) = task();
        let mut f = scripted(&[Step::WakeItself]);
        assert!(f.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        assert_eq!(f.as_mut().project().future.polls, REPOLLS + 1, "one poll and the rounds it may add");
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "the task was woken once, to be polled later");
    }

    #[test]
    fn a_wake_after_the_poll_reaches_the_task() {
        let (counter, waker) = task();
        let mut f = scripted(&[Step::WakeItself, Step::Wait, Step::Ready]);
        assert!(f.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
        let stashed = f.as_mut().project().future.stash.clone();
        let from_elsewhere = std::thread::spawn(move || stashed.map(|w| w.wake()));
        let _ = from_elsewhere.join();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "a wake from another thread wakes the task");
        assert_eq!(f.as_mut().poll(&mut Context::from_waker(&waker)), Poll::Ready(3));
    }
}
