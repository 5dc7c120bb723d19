//! Rows in flight kept in memory: sign-ins in progress and approval requests.
//!
//! A phone sign-in reads its sign-in and its approval about a dozen times in the few seconds it
//! lives, and every read crosses to a connection's thread and back (docs/performance.md). Only
//! this process writes those rows (a SQLite database has one server), so after a write the
//! store keeps the value it wrote and answers later reads from memory. Every write still goes
//! to the database first: a crash loses nothing, and a restarted server reads the rows back.
//!
//! The cache never holds a value older than the database's:
//! - a value enters only from a write that committed, and only when no other write of the same
//!   row was in flight meanwhile (two overlapping writes may commit in either order, so neither
//!   value is trusted and the row is read from the database until the next lone write);
//! - a read that misses fills the entry only if the row was written (an entry exists) and no
//!   write of it started while the read ran;
//! - a delete drops the entry; a row that was never written here is never cached, so a
//!   deleted row cannot come back from a read that raced its delete.
//!
//! At most `capacity` rows are kept; past that, rows written are simply not cached (reads of
//! them go to the database), so a flood of abandoned sign-ins costs memory only up to the cap.

use std::collections::HashMap;
use std::sync::Mutex;

/// One row's place in the cache.
#[derive(Debug)]
struct Slot<T> {
    /// The row as last written or read, when that is known to be current.
    value: Option<T>,
    /// Bumped by every write that starts.
    generation: u64,
    /// Writes started and not yet finished.
    writing: u32,
    /// Whether a write started while another was in flight, since writes last drained.
    overlapped: bool,
}

/// A write in flight, from [`Hot::begin_write`] to [`Hot::finish_write`].
#[must_use]
#[derive(Debug)]
pub(super) struct WriteTicket {
    key: String,
    generation: u64,
    /// False when the cache was full and this row had no entry: nothing is cached for it.
    tracked: bool,
}

/// A read that missed, from [`Hot::get`] to [`Hot::fill`].
#[derive(Debug)]
pub(super) struct ReadTicket {
    key: String,
    generation: Option<u64>,
}

/// What a finished write leaves in the row.
pub(super) enum Written<T> {
    /// The row now holds this value.
    Value(T),
    /// The row is gone.
    Deleted,
    /// The write failed or its result is not known here: read it from the database next time.
    Unknown,
}

#[derive(Debug)]
pub(super) struct Hot<T> {
    rows: Mutex<HashMap<String, Slot<T>>>,
    capacity: usize,
}

impl<T: Clone> Hot<T> {
    pub(super) fn new(capacity: usize) -> Hot<T> {
        Hot {
            rows: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot<T>>> {
        // A panic while holding this lock cannot leave a slot half-updated in a way that
        // matters: every field is written in one assignment.
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached row, or a ticket to fill it with what the database says.
    pub(super) fn get(&self, key: &str) -> Result<T, ReadTicket> {
        let rows = self.rows();
        match rows.get(key) {
            Some(slot) => match &slot.value {
                Some(value) => Ok(value.clone()),
                None => Err(ReadTicket {
                    key: key.to_string(),
                    generation: (slot.writing == 0).then_some(slot.generation),
                }),
            },
            None => Err(ReadTicket {
                key: key.to_string(),
                generation: None,
            }),
        }
    }

    /// Keeps what a missed read found, if nothing wrote the row meanwhile.
    pub(super) fn fill(&self, ticket: ReadTicket, found: Option<&T>) {
        let (Some(generation), Some(found)) = (ticket.generation, found) else {
            return;
        };
        let mut rows = self.rows();
        if let Some(slot) = rows.get_mut(&ticket.key)
            && slot.generation == generation
            && slot.writing == 0
        {
            slot.value = Some(found.clone());
        }
    }

    /// Marks a write of `key` as started: until it finishes, the row is read from the database.
    pub(super) fn begin_write(&self, key: &str) -> WriteTicket {
        self.begin_update(key).0
    }

    /// As [`Hot::begin_write`], also giving the row's value as it stood, when that was known:
    /// a write that changes a few fields can then tell the cache the whole row it leaves.
    pub(super) fn begin_update(&self, key: &str) -> (WriteTicket, Option<T>) {
        let mut rows = self.rows();
        let full = rows.len() >= self.capacity;
        let slot = match rows.get_mut(key) {
            Some(slot) => slot,
            None if full => {
                let untracked = WriteTicket {
                    key: key.to_string(),
                    generation: 0,
                    tracked: false,
                };
                return (untracked, None);
            }
            None => rows.entry(key.to_string()).or_insert(Slot {
                value: None,
                generation: 0,
                writing: 0,
                overlapped: false,
            }),
        };
        let previous = if slot.writing == 0 {
            slot.value.take()
        } else {
            slot.overlapped = true;
            None
        };
        slot.generation += 1;
        slot.writing += 1;
        slot.value = None;
        let ticket = WriteTicket {
            key: key.to_string(),
            generation: slot.generation,
            tracked: true,
        };
        (ticket, previous)
    }

    /// Records how a write ended.
    pub(super) fn finish_write(&self, ticket: WriteTicket, written: Written<T>) {
        if !ticket.tracked {
            return;
        }
        let mut rows = self.rows();
        let Some(slot) = rows.get_mut(&ticket.key) else {
            return;
        };
        slot.writing -= 1;
        // Only a write that overlapped no other is known to be the last one committed.
        let alone = slot.writing == 0 && !slot.overlapped && slot.generation == ticket.generation;
        if slot.writing == 0 {
            slot.overlapped = false;
        }
        match written {
            Written::Deleted if alone => {
                rows.remove(&ticket.key);
            }
            Written::Value(value) if alone => slot.value = Some(value),
            Written::Value(_) | Written::Deleted | Written::Unknown => slot.value = None,
        }
    }

    /// The row from memory, or else as `read` finds it in the database (kept when it may be).
    pub(super) async fn read_through<E>(
        &self,
        key: &str,
        read: impl Future<Output = Result<Option<T>, E>>,
    ) -> Result<Option<T>, E> {
        let ticket = match self.get(key) {
            Ok(value) => return Ok(Some(value)),
            Err(ticket) => ticket,
        };
        let found = read.await?;
        self.fill(ticket, found.as_ref());
        Ok(found)
    }

    /// Runs `write`, which leaves the row holding `value` when it succeeds.
    pub(super) async fn write_through<R, E>(
        &self,
        key: &str,
        value: &T,
        write: impl Future<Output = Result<R, E>>,
    ) -> Result<R, E> {
        let ticket = self.begin_write(key);
        let done = write.await;
        let written = match done {
            Ok(_) => Written::Value(value.clone()),
            Err(_) => Written::Unknown,
        };
        self.finish_write(ticket, written);
        done
    }

    /// Drops every row `gone` says the database no longer has (a purge), unless a write of it
    /// is in flight (that write will say what the row holds).
    pub(super) fn forget_where(&self, gone: impl Fn(&T) -> bool) {
        let mut rows = self.rows();
        rows.retain(|_, slot| slot.writing > 0 || !slot.value.as_ref().is_some_and(&gone));
        // Entries that hold no value and no write are only worth keeping while small.
        if rows.len() >= self.capacity {
            rows.retain(|_, slot| slot.writing > 0 || slot.value.is_some());
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.rows().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_row_is_read_from_memory_until_it_is_deleted() {
        let hot = Hot::new(10);
        assert!(hot.get("a").is_err(), "nothing is cached before a write");
        let ticket = hot.begin_write("a");
        assert!(
            hot.get("a").is_err(),
            "a write in flight is not read from memory"
        );
        hot.finish_write(ticket, Written::Value(1));
        assert_eq!(hot.get("a").unwrap(), 1);
        let ticket = hot.begin_write("a");
        hot.finish_write(ticket, Written::Deleted);
        assert!(hot.get("a").is_err());
        assert_eq!(hot.len(), 0);
    }

    #[test]
    fn an_update_sees_the_row_as_it_stood_only_when_no_other_write_was_in_flight() {
        let hot = Hot::new(10);
        let ticket = hot.begin_write("a");
        hot.finish_write(ticket, Written::Value(1));
        let (first, previous) = hot.begin_update("a");
        assert_eq!(previous, Some(1));
        let (second, previous) = hot.begin_update("a");
        assert_eq!(previous, None, "the first update may change it");
        hot.finish_write(first, Written::Value(2));
        hot.finish_write(second, Written::Value(3));
        assert!(hot.get("a").is_err());
    }

    #[test]
    fn overlapping_writes_of_one_row_leave_it_to_the_database() {
        let hot = Hot::new(10);
        let first = hot.begin_write("a");
        let second = hot.begin_write("a");
        // The database may have committed them in either order.
        hot.finish_write(second, Written::Value(2));
        hot.finish_write(first, Written::Value(1));
        let ticket = hot.get("a").expect_err("neither value is trusted");
        // A read after both, with no write in flight, may fill it.
        hot.fill(ticket, Some(&1));
        assert_eq!(hot.get("a").unwrap(), 1);
        // Nor when the earlier one finishes first.
        let first = hot.begin_write("a");
        let second = hot.begin_write("a");
        hot.finish_write(first, Written::Value(1));
        hot.finish_write(second, Written::Value(2));
        assert!(hot.get("a").is_err());
    }

    #[test]
    fn a_read_that_raced_a_write_does_not_fill_the_row_with_what_it_read_before() {
        let hot = Hot::new(10);
        let ticket = hot.begin_write("a");
        hot.finish_write(ticket, Written::Unknown);
        let read = hot.get("a").expect_err("unknown after a failed write");
        let write = hot.begin_write("a");
        hot.finish_write(write, Written::Value(2));
        hot.fill(read, Some(&1));
        assert_eq!(hot.get("a").unwrap(), 2, "the older read is dropped");
    }

    #[test]
    fn a_row_never_written_here_is_never_cached_so_a_raced_delete_cannot_bring_it_back() {
        let hot = Hot::new(10);
        let read = hot.get("a").expect_err("a miss");
        let delete = hot.begin_write("a");
        hot.finish_write(delete, Written::Deleted);
        hot.fill(read, Some(&1));
        assert!(hot.get("a").is_err());
    }

    #[test]
    fn a_full_cache_stops_caching_new_rows_but_keeps_serving_old_ones() {
        let hot = Hot::new(2);
        for key in ["a", "b", "c"] {
            let ticket = hot.begin_write(key);
            hot.finish_write(ticket, Written::Value(key.to_string()));
        }
        assert_eq!(hot.get("a").unwrap(), "a");
        assert_eq!(hot.get("b").unwrap(), "b");
        assert!(
            hot.get("c").is_err(),
            "past the cap, rows stay in the database only"
        );
        // A purge makes room again.
        hot.forget_where(|v| v == "a");
        let ticket = hot.begin_write("c");
        hot.finish_write(ticket, Written::Value("c".to_string()));
        assert_eq!(hot.get("c").unwrap(), "c");
    }
}
