//! Password hashing away from the async runtime: argon2id takes tens of milliseconds of CPU
//! and 19 MiB per hash. On an async worker it would stall every other request sharing that
//! worker; on tokio's blocking pool, which grows a thread per waiting call, each thread's
//! allocator keeps its own 19 MiB (a password-and-push load reached 1.2 GB resident). So a
//! few threads of our own do it, and callers queue for them.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, oneshot};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug)]
pub(crate) struct Hashers {
    jobs: mpsc::Sender<Job>,
    /// One per thread: a job is handed over only when a thread is free, so the queue holds
    /// callers (as futures) rather than passwords.
    free: Semaphore,
}

impl Hashers {
    /// One thread per core, from one to four.
    pub(crate) fn new() -> Hashers {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut started = 0;
        for _ in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name("latchkey-hash".into())
                .spawn(move || {
                    loop {
                        // Ends when the service (the only sender) is dropped.
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = next else { return };
                        // A panic fails that one caller (its answer channel closes).
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                });
            if spawned.is_ok() {
                started += 1;
            }
        }
        Hashers {
            jobs,
            free: Semaphore::new(started),
        }
    }

    /// Runs `work` on a hashing thread once one is free. `None` if it panicked or no thread
    /// could be started.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let _free = self.free.acquire().await.ok()?;
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = answer.send(work());
            }))
            .ok()?;
        answered.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_off_the_calling_thread_and_a_panic_fails_only_its_caller() {
        let hashers = Hashers::new();
        let caller = std::thread::current().id();
        let ran_on = hashers.run(|| std::thread::current().id()).await.unwrap();
        assert_ne!(ran_on, caller);
        assert_eq!(hashers.run(|| -> u8 { panic!("bad hash") }).await, None);
        // The thread that panicked is still there for the next caller.
        let many: Vec<_> = (0..20).map(|i| hashers.run(move || i * 2)).collect();
        for (i, answer) in many.into_iter().enumerate() {
            assert_eq!(answer.await, Some(i * 2));
        }
    }
}
