//! The executor the server's tasks run on: `threads` workers sharing async-io's one reactor.
//! A task woken on a worker thread runs there next (no hand-off); a sleeping sibling is woken
//! only for a backlog, a long poll or a wake from outside the workers; idle workers steal.

use async_task::{Runnable, Task};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Tasks a worker runs before it lets `block_on` look at the reactor (as async-executor does).
const BUDGET: usize = 200;
/// Tasks a worker's queue holds behind the one it runs next before a sleeping sibling is woken
/// to take some. Not 0: a task that wakes another (a command its subscriber's session) and
/// itself (its own writer's queue) queues two, which this thread runs in a few microseconds;
/// waking a sibling for them was a hand-off per command.
const SPARE: usize = 1;
/// A task polled this long is taken to go on: what it wakes from now on may go to a sibling.
const LONG_POLL: Duration = Duration::from_micros(100);
/// Every this many tasks a worker looks at the shared queue first (a thread whose own queue never
/// empties would otherwise leave what other threads woke, e.g. replies the store made durable).
const GLOBAL_EVERY: usize = 32;

/// Runs spawned tasks on the threads that call [`Executor::run`]; cheap to share in an `Arc`.
///
/// Why not async-executor's: on every task it finds, a ticker there wakes a sleeping sibling
/// "just in case", and every wake goes through the shared queue, so on a 2-CPU box each command
/// at low load cost 2-3 thread switches (BENCHMARKS.md, rounds 7-9).
#[derive(Default)]
pub struct Executor {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// tasks woken outside a worker thread
    global: Mutex<VecDeque<Runnable>>,
    global_len: AtomicUsize,
    /// every running worker (their queues are stolen from)
    workers: Mutex<Vec<Arc<Worker>>>,
    /// workers with nothing to do and the waker of their `run` (their `sleeping` flag is
    /// changed only under this lock)
    sleepers: Mutex<Vec<(Arc<Worker>, Waker)>>,
    next_id: AtomicUsize,
}

struct Worker {
    id: usize,
    local: Mutex<VecDeque<Runnable>>,
    /// in `sleepers` (set and cleared under its lock)
    sleeping: AtomicBool,
}

thread_local! {
    /// The worker this thread is (inside `run`), with its executor's address.
    static CURRENT: RefCell<Option<(usize, Arc<Worker>)>> = const { RefCell::new(None) };
    /// When this worker started polling the task it runs (None between tasks).
    static POLLING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Executor {
    /// An executor with no worker yet (the first `run` makes one).
    pub fn new() -> Executor {
        Executor::default()
    }

    /// Spawns a task; it runs on a worker thread (a panic inside comes back where it is
    /// awaited, as with smol's executor).
    pub fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        let shared = self.shared.clone();
        let (runnable, task) = async_task::Builder::new()
            .propagate_panic(true)
            .spawn(|()| future, move |r| shared.schedule(r));
        runnable.schedule();
        task
    }

    /// Makes this thread a worker until `future` completes.
    pub async fn run<T>(&self, future: impl Future<Output = T>) -> T {
        let me = self.shared.register();
        let _done = Unregister(&self.shared, me.clone());
        let mut ticks = 0usize;
        let work = std::future::poll_fn(|cx| {
            for _ in 0..BUDGET {
                ticks = ticks.wrapping_add(1);
                let Some(r) = self.shared.find(&me, ticks.is_multiple_of(GLOBAL_EVERY)) else {
                    self.shared.sleep(&me, cx.waker());
                    // a task queued between the search and the sleep is not lost
                    match self.shared.find(&me, false) {
                        Some(r) => {
                            self.shared.unsleep(&me);
                            run(r);
                            continue;
                        }
                        None => return Poll::Pending,
                    }
                };
                run(r);
            }
            // let `block_on` poll the reactor, then come back
            cx.waker().wake_by_ref();
            Poll::Pending
        });
        futures_lite::future::or(future, work).await
    }
}

/// Polls a task, noting when it started (see `LONG_POLL`).
fn run(r: Runnable) {
    POLLING_SINCE.with(|p| p.set(Some(Instant::now())));
    r.run();
    POLLING_SINCE.with(|p| p.set(None));
}

/// True while the task this thread polls has run for `LONG_POLL` or more.
fn in_long_poll() -> bool {
    POLLING_SINCE.with(|p| p.get().is_some_and(|at| at.elapsed() >= LONG_POLL))
}

/// Ends a worker: its queued tasks go to the others.
struct Unregister<'a>(&'a Shared, Arc<Worker>);

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        let (shared, me) = (self.0, &self.1);
        CURRENT.with(|c| c.borrow_mut().take());
        shared.unsleep(me);
        lock(&shared.workers).retain(|w| w.id != me.id);
        let left: Vec<Runnable> = lock(&me.local).drain(..).collect();
        for r in left {
            shared.push_global(r);
        }
    }
}

impl Shared {
    fn register(self: &Arc<Self>) -> Arc<Worker> {
        let me = Arc::new(Worker {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            local: Mutex::new(VecDeque::new()),
            sleeping: AtomicBool::new(false),
        });
        lock(&self.workers).push(me.clone());
        let key = Arc::as_ptr(self) as usize;
        CURRENT.with(|c| *c.borrow_mut() = Some((key, me.clone())));
        me
    }

    /// Where a woken task goes: the queue of the worker thread that woke it, else the shared one.
    fn schedule(&self, r: Runnable) {
        let key = self as *const Shared as usize;
        let r = CURRENT.with(|c| {
            let c = c.borrow();
            let Some((_, me)) = c.as_ref().filter(|(k, _)| *k == key) else {
                return Some(r);
            };
            let backlog = {
                let mut q = lock(&me.local);
                q.push_back(r);
                q.len() > SPARE + 1
            } || in_long_poll();
            // the thread is in the reactor (its `run` sleeps): wake it (same thread, no syscall)
            if me.sleeping.load(Ordering::Acquire) {
                self.wake(Some(me.id), None);
            }
            // more is waiting than this thread will soon reach (a backlog, or the task it runs
            // goes on): a sibling may take some
            if backlog {
                self.wake(None, Some(me.id));
            }
            None
        });
        if let Some(r) = r {
            self.push_global(r);
        }
    }

    fn push_global(&self, r: Runnable) {
        lock(&self.global).push_back(r);
        self.global_len.fetch_add(1, Ordering::Release);
        self.wake(None, None);
    }

    /// Wakes one sleeping worker: `only` that one, or any but `not`.
    fn wake(&self, only: Option<usize>, not: Option<usize>) {
        let waker = {
            let mut s = lock(&self.sleepers);
            let at = s
                .iter()
                .position(|(w, _)| only.is_none_or(|o| o == w.id) && Some(w.id) != not);
            at.map(|i| {
                let (w, waker) = s.swap_remove(i);
                w.sleeping.store(false, Ordering::Release);
                waker
            })
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn sleep(&self, me: &Arc<Worker>, waker: &Waker) {
        let mut s = lock(&self.sleepers);
        match s.iter_mut().find(|(w, _)| w.id == me.id) {
            Some((_, w)) => w.clone_from(waker),
            None => s.push((me.clone(), waker.clone())),
        }
        me.sleeping.store(true, Ordering::Release);
    }

    fn unsleep(&self, me: &Worker) {
        if me.sleeping.load(Ordering::Acquire) {
            let mut s = lock(&self.sleepers);
            s.retain(|(w, _)| w.id != me.id);
            me.sleeping.store(false, Ordering::Release);
        }
    }

    /// The next task for `me`: its own queue, the shared one (first if `global_first`), then
    /// half of a sibling's queue.
    fn find(&self, me: &Worker, global_first: bool) -> Option<Runnable> {
        if global_first {
            if let Some(r) = self.pop_global(me) {
                return Some(r);
            }
        }
        let r = {
            let mut q = lock(&me.local);
            q.pop_front().map(|r| (r, q.len() > SPARE))
        };
        if let Some((r, more)) = r {
            if more {
                // work is left behind the task about to run: a sleeping sibling may take it
                self.wake(None, Some(me.id));
            }
            self.unsleep(me);
            return Some(r);
        }
        if let Some(r) = self.pop_global(me) {
            return Some(r);
        }
        let mut got = VecDeque::new();
        for other in lock(&self.workers).iter().filter(|w| w.id != me.id) {
            let mut theirs = lock(&other.local);
            let take = theirs.len().div_ceil(2);
            if take > 0 {
                got.extend(theirs.drain(..take));
                break;
            }
        }
        let first = got.pop_front()?;
        if !got.is_empty() {
            lock(&me.local).extend(got);
        }
        self.unsleep(me);
        Some(first)
    }

    fn pop_global(&self, me: &Worker) -> Option<Runnable> {
        if self.global_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut g = lock(&self.global);
        let r = g.pop_front()?;
        self.global_len.fetch_sub(1, Ordering::Release);
        let more = !g.is_empty();
        drop(g);
        if more {
            self.wake(None, Some(me.id));
        }
        self.unsleep(me);
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    #[test]
    fn runs_tasks_and_returns_their_output() {
        let ex = Executor::new();
        let t = ex.spawn(async { 1 + 2 });
        assert_eq!(smol::block_on(ex.run(t)), 3);
    }

    #[test]
    fn a_task_woken_from_another_thread_runs() {
        let ex = Arc::new(Executor::new());
        let (tx, rx) = async_channel::bounded::<u32>(1);
        let t = ex.spawn(async move { rx.recv().await.unwrap() * 2 });
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            smol::block_on(tx.send(21)).unwrap();
        });
        assert_eq!(smol::block_on(ex.run(t)), 42);
    }

    #[test]
    fn many_tasks_on_several_workers_all_finish() {
        let ex = Arc::new(Executor::new());
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (ex, stop) = (ex.clone(), stop_rx.clone());
                std::thread::spawn(move || smol::block_on(ex.run(stop.recv())))
            })
            .collect();
        let done = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..2000)
            .map(|i| {
                let done = done.clone();
                ex.spawn(async move {
                    // tasks that wake each other (a channel ping) and yield
                    let (tx, rx) = async_channel::bounded::<u32>(1);
                    let inner = async move { tx.send(i).await.unwrap() };
                    let (_, got) = futures_lite::future::zip(inner, rx.recv()).await;
                    futures_lite::future::yield_now().await;
                    done.fetch_add(1, Ordering::Relaxed);
                    got.unwrap()
                })
            })
            .collect();
        let sum = smol::block_on(ex.run(async {
            let mut sum = 0u64;
            for t in tasks {
                sum += t.await as u64;
            }
            sum
        }));
        assert_eq!(sum, (0..2000u64).sum::<u64>());
        assert_eq!(done.load(Ordering::Relaxed), 2000);
        stop_tx.close();
        for w in workers {
            let _ = w.join().unwrap();
        }
    }

    /// One worker is stuck in a task (after `busy_first`); what that task queued (`n` tasks,
    /// the last of which must run) has to be run by the other worker.
    fn blocked_worker(busy_first: Duration, n: usize) {
        let ex = Arc::new(Executor::new());
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let other = {
            let (ex, stop) = (ex.clone(), stop_rx.clone());
            std::thread::spawn(move || smol::block_on(ex.run(stop.recv())))
        };
        let (ran_tx, ran_rx) = std::sync::mpsc::channel::<()>();
        let ex2 = ex.clone();
        let blocker = ex.spawn(async move {
            std::thread::sleep(busy_first);
            let mut tasks: Vec<_> = (1..n).map(|_| ex2.spawn(async {})).collect();
            let ran_tx2 = ran_tx.clone();
            tasks.push(ex2.spawn(async move { ran_tx2.send(()).unwrap() }));
            // blocks this worker until the last task ran elsewhere
            ran_rx.recv_timeout(Duration::from_secs(5)).unwrap();
            for t in tasks {
                t.await;
            }
        });
        smol::block_on(ex.run(blocker));
        stop_tx.close();
        let _ = other.join().unwrap();
    }

    #[test]
    fn a_backlog_behind_a_blocked_worker_goes_to_a_sibling() {
        blocked_worker(Duration::ZERO, SPARE + 2);
    }

    #[test]
    fn what_a_long_poll_wakes_goes_to_a_sibling() {
        blocked_worker(LONG_POLL * 3, 1);
    }

    #[test]
    fn a_busy_worker_still_runs_what_other_threads_woke() {
        // the only worker's queue never empties (a task that yields); a task woken from another
        // thread must still run
        let ex = Arc::new(Executor::new());
        let seen = Arc::new(AtomicBool::new(false));
        let seen2 = seen.clone();
        let busy = ex.spawn(async move {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(2) {
                if seen2.load(Ordering::Acquire) {
                    return true;
                }
                futures_lite::future::yield_now().await;
            }
            false
        });
        let (ex2, seen3) = (ex.clone(), seen.clone());
        let outside = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            ex2.spawn(async move { seen3.store(true, Ordering::Release) })
                .detach();
        });
        assert!(smol::block_on(ex.run(busy)), "the woken task never ran");
        outside.join().unwrap();
    }

    #[test]
    fn a_panic_reaches_the_awaiting_side() {
        let ex = Executor::new();
        let t = ex.spawn(async { panic!("boom") });
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            smol::block_on(ex.run(t));
        }));
        assert!(caught.is_err());
    }
}
