//! Rows every sign-in reads and almost nothing writes, kept in memory: users, devices, the
//! authentication methods policy, user risk and web push subscriptions.
//!
//! A phone sign-in reads its user about four times, its device two or three times and the
//! policy twice (docs/performance.md), and a SQLite read is a trip through a reader's page
//! cache, which every commit empties. Only this process writes the database (a SQLite file
//! has one server; the writer thread is the only connection that may write), so the writer
//! itself can say when a cached copy stops being true: SQLite's update hook tells it of every
//! row it inserts, updates or deletes, including the rows a foreign key's `ON DELETE CASCADE`
//! removes and those triggers change. (Of Latchkey's other commands, those that open the file
//! while a server runs, `keys rotate` and `backup`, never write these tables; migrations run
//! before a server opens its connections.)
//!
//! Each cached table has a generation. The writer bumps it twice for every write to the table:
//! when the row changes (the hook), and again once that write has committed or rolled back,
//! before any caller hears of it. A copy is used only while its table's generation is the one
//! it was read under, and a copy read is kept only if the generation did not move while it
//! was read. So:
//! - a copy read before a write began is dropped by the write's first bump;
//! - a copy read while the write was uncommitted (the reader saw the old row) is dropped by
//!   the second bump, which comes before the writer's caller is answered;
//! - nothing read is kept if either bump happened while it was read.
//!
//! A write to one row drops every cached row of its table: these tables change when an
//! administrator or a user changes an account, a device or the policy, not per sign-in.
//! Rows not found are not cached (guessed names cannot fill memory), except where the key is
//! one the server chose, not a name someone typed: the policy's one row (absent until an
//! administrator saves one: the defaults apply), a known user's risk and a known device's push
//! subscription, whose absence is the usual case and is kept like a row. At most
//! [`STEADY_ROWS`] rows a table are kept.
//!
//! Only rowid tables can be cached: SQLite does not call the update hook for a table
//! `WITHOUT ROWID` (such as `group_members`), so a write to one would go unseen. A test checks
//! every cached table.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use latchkey_domain::authenticator::Device;
use latchkey_domain::policy::AuthenticationMethodsPolicy;
use latchkey_domain::push::PushSubscription;
use latchkey_domain::risk::UserRisk;
use latchkey_domain::store::StoreResult;
use latchkey_domain::user::User;

/// At most this many rows of one table are kept; past it the table's cache starts again empty.
pub(super) const STEADY_ROWS: usize = 20_000;

/// A table whose rows are cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Table {
    Users = 0,
    Devices = 1,
    Policy = 2,
    UserRisk = 3,
    PushSubscriptions = 4,
}

pub(super) const TABLES: [(&str, Table); 5] = [
    ("users", Table::Users),
    ("devices", Table::Devices),
    ("policy", Table::Policy),
    ("user_risk", Table::UserRisk),
    ("push_subscriptions", Table::PushSubscriptions),
];

/// The cached tables' generations, bumped by the writer thread.
#[derive(Debug, Default)]
pub(super) struct Generations {
    of: [AtomicU64; TABLES.len()],
    /// Tables changed since the writer last settled, one bit each.
    changed: AtomicU32,
}

impl Generations {
    /// From the writer's update hook: a row of `table` changed (not yet committed).
    pub(super) fn row_changed(&self, table: &str) {
        if let Some((_, table)) = TABLES.iter().find(|(name, _)| *name == table) {
            self.of[*table as usize].fetch_add(1, Ordering::SeqCst);
            self.changed.fetch_or(1 << *table as u32, Ordering::SeqCst);
        }
    }

    /// From the writer, with no transaction open (after a commit, a rollback or a write that
    /// committed on its own) and before it answers the writes: the tables changed since last
    /// time are now as the database holds them.
    pub(super) fn settled(&self) {
        let changed = self.changed.swap(0, Ordering::SeqCst);
        for (_, table) in TABLES {
            if changed & (1 << table as u32) != 0 {
                self.of[table as usize].fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    fn now(&self, table: Table) -> u64 {
        self.of[table as usize].load(Ordering::SeqCst)
    }
}

/// Every table's cached rows.
#[derive(Debug)]
pub(super) struct SteadyRows {
    /// Users by `id:` and their id, and by `upn:` and their user name.
    pub(super) users: Steady<User>,
    /// Devices by id.
    pub(super) devices: Steady<Device>,
    /// A user's devices, by the user's id (only users who have some).
    pub(super) device_lists: Steady<Vec<Device>>,
    /// The one policy row, under the empty key; `None` while none was saved.
    pub(super) policy: Steady<Option<AuthenticationMethodsPolicy>>,
    /// A user's risk, by the user's id; `None` for a user never at risk.
    pub(super) risks: Steady<Option<UserRisk>>,
    /// A device's web push subscription, by the device's id; `None` for one without.
    pub(super) subscriptions: Steady<Option<PushSubscription>>,
}

impl SteadyRows {
    pub(super) fn new() -> SteadyRows {
        SteadyRows {
            users: Steady::new(Table::Users),
            devices: Steady::new(Table::Devices),
            device_lists: Steady::new(Table::Devices),
            policy: Steady::new(Table::Policy),
            risks: Steady::new(Table::UserRisk),
            subscriptions: Steady::new(Table::PushSubscriptions),
        }
    }
}

/// The cached rows of one table, by a key of the caller's choosing (an id, a user name).
#[derive(Debug)]
pub(super) struct Steady<T> {
    table: Table,
    rows: Mutex<HashMap<String, (u64, T)>>,
}

impl<T: Clone> Steady<T> {
    pub(super) fn new(table: Table) -> Steady<T> {
        Steady {
            table,
            rows: Mutex::new(HashMap::new()),
        }
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, T)>> {
        // Every entry is written in one assignment: a panic elsewhere cannot leave one torn.
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The row under `key`: the cached copy while it is current, else `read` (and the copy is
    /// kept if nothing wrote the table meanwhile).
    pub(super) fn read_through(
        &self,
        generations: &Generations,
        key: &str,
        read: impl FnOnce() -> StoreResult<Option<T>>,
    ) -> StoreResult<Option<T>> {
        let before = generations.now(self.table);
        if let Some((generation, row)) = self.rows().get(key)
            && *generation == before
        {
            return Ok(Some(row.clone()));
        }
        let found = read()?;
        if let Some(row) = &found {
            let mut rows = self.rows();
            if generations.now(self.table) == before {
                if rows.len() >= STEADY_ROWS {
                    rows.retain(|_, (generation, _)| *generation == before);
                    if rows.len() >= STEADY_ROWS {
                        rows.clear();
                    }
                }
                rows.insert(key.to_string(), (before, row.clone()));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_as(value: &str) -> impl FnOnce() -> StoreResult<Option<String>> {
        let value = value.to_string();
        move || Ok(Some(value))
    }

    #[test]
    fn a_copy_is_used_until_its_table_is_written() {
        let generations = Generations::default();
        let users = Steady::new(Table::Users);
        assert_eq!(
            users
                .read_through(&generations, "u", read_as("old"))
                .unwrap(),
            Some("old".into())
        );
        assert_eq!(
            users
                .read_through(&generations, "u", read_as("unused"))
                .unwrap(),
            Some("old".into()),
            "the copy answers"
        );
        generations.row_changed("devices");
        generations.settled();
        assert_eq!(
            users
                .read_through(&generations, "u", read_as("unused"))
                .unwrap(),
            Some("old".into()),
            "another table's write leaves it"
        );
        generations.row_changed("users");
        assert_eq!(
            users
                .read_through(&generations, "u", read_as("new"))
                .unwrap(),
            Some("new".into()),
            "a write to the table drops it at once"
        );
    }

    /// Threat: a disabled account (or a removed device) still signing in from a copy read
    /// while the change was written but not yet committed.
    #[test]
    fn a_row_read_while_a_write_is_uncommitted_is_not_used_after_the_commit() {
        let generations = Generations::default();
        let users = Steady::new(Table::Users);
        generations.row_changed("users");
        // A reader between the change and the commit still sees the old row.
        users
            .read_through(&generations, "u", read_as("enabled"))
            .unwrap();
        generations.settled();
        assert_eq!(
            users
                .read_through(&generations, "u", read_as("disabled"))
                .unwrap(),
            Some("disabled".into())
        );
    }

    #[test]
    fn a_row_read_across_a_write_is_not_kept() {
        let generations = Generations::default();
        let users = Steady::new(Table::Users);
        users
            .read_through(&generations, "u", || {
                generations.row_changed("users");
                Ok(Some("read before the change".to_string()))
            })
            .unwrap();
        assert_eq!(
            users
                .read_through(&generations, "u", read_as("fresh"))
                .unwrap(),
            Some("fresh".into())
        );
    }

    #[test]
    fn rows_not_found_are_not_cached_and_the_cache_stays_bounded() {
        let generations = Generations::default();
        let users: Steady<String> = Steady::new(Table::Users);
        assert_eq!(
            users.read_through(&generations, "x", || Ok(None)).unwrap(),
            None
        );
        assert_eq!(
            users
                .read_through(&generations, "x", read_as("added"))
                .unwrap(),
            Some("added".into())
        );
        for i in 0..STEADY_ROWS + 10 {
            users
                .read_through(&generations, &i.to_string(), read_as("v"))
                .unwrap();
        }
        assert!(users.rows().len() <= STEADY_ROWS);
    }
}
