//! PostgreSQL for a load run: a schema of its own in the database `--database-url` names
//! (dropped after the run), and the CPU time PostgreSQL spends on the run, read from `/proc`.
//!
//! The URL may hold a password: it is never printed, and errors about it do not quote it.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::{Context, Result, anyhow};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor, Row};

use crate::server::USER_HZ;

/// The database the servers of one run share.
pub struct BenchDatabase {
    options: PgConnectOptions,
    /// `lkbench_` and 16 hex digits: the scratch schema's name (when there is one) and the
    /// `application_name` of every server connection, which tells the run's backends apart
    /// from everyone else's in `pg_stat_activity`.
    tag: String,
    scratch: bool,
    /// What the servers get as `LATCHKEY_DATABASE_URL`.
    pub server_url: String,
}

impl BenchDatabase {
    /// Connects once to check the URL and, with `scratch`, creates the run's schema.
    pub async fn prepare(url: &str, scratch: bool) -> Result<BenchDatabase> {
        let options = PgConnectOptions::from_str(url).map_err(|_| {
            anyhow!("--database-url is not a PostgreSQL URL (postgres://user@host:port/database)")
        })?;
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("random source");
        let tag = format!(
            "lkbench_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let database = BenchDatabase {
            options,
            server_url: with_parameters(url, &tag, scratch),
            tag,
            scratch,
        };
        let mut conn = database.connect().await?;
        if scratch {
            // The name is made here of hex digits only, never input.
            conn.execute(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA {}",
                database.tag
            )))
            .await
            .context("creating the run's schema")?;
        }
        let _ = conn.close().await;
        Ok(database)
    }

    async fn connect(&self) -> Result<PgConnection> {
        PgConnection::connect_with(&self.options)
            .await
            .context("connecting to the PostgreSQL database at --database-url")
    }

    /// Describes the run's database without its URL.
    pub fn describe(&self) -> String {
        if self.scratch {
            format!("PostgreSQL (schema {}, dropped after the run)", self.tag)
        } else {
            "PostgreSQL (the database as --database-url names it)".into()
        }
    }

    /// PostgreSQL's CPU time now: per backend serving the run's servers, and in total over
    /// every `postgres` process on this machine.
    pub async fn cpu(&self) -> Result<DatabaseCpu> {
        let mut conn = self.connect().await?;
        let rows = sqlx::query("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
            .bind(&self.tag)
            .fetch_all(&mut conn)
            .await
            .context("reading pg_stat_activity")?;
        let _ = conn.close().await;
        let mut backends = BTreeMap::new();
        for row in rows {
            let pid: i32 = row.try_get("pid")?;
            if let Some(cpu) = u32::try_from(pid).ok().and_then(process_cpu) {
                backends.insert(pid as u32, cpu.own);
            }
        }
        Ok(DatabaseCpu {
            backends,
            all_postgres: all_postgres_cpu(),
        })
    }

    /// Drops the run's schema (when it made one).
    pub async fn finish(self) -> Result<()> {
        if !self.scratch {
            return Ok(());
        }
        let mut conn = self.connect().await?;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.tag
        )))
        .await
        .with_context(|| format!("dropping the schema {}", self.tag))?;
        let _ = conn.close().await;
        Ok(())
    }
}

/// `url` with the run's `application_name` and, for a scratch schema, its `search_path`.
fn with_parameters(url: &str, tag: &str, scratch: bool) -> String {
    let mut url = url.to_string();
    let mut add = |parameter: String| {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&parameter);
    };
    add(format!("application_name={tag}"));
    if scratch {
        add(format!("options%5Bsearch_path%5D={tag}"));
    }
    url
}

/// PostgreSQL's CPU seconds at one moment.
#[derive(Debug, Clone, Default)]
pub struct DatabaseCpu {
    /// Per backend (process id) of the run's server connections.
    pub backends: BTreeMap<u32, f64>,
    /// Every `postgres` process on the machine, including the postmaster's reaped children
    /// (so backends that ended still count): other databases' load and the background
    /// writers included.
    pub all_postgres: f64,
}

/// PostgreSQL's CPU over a run.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseCpuSpent {
    /// The run's backends: those alive at the end, minus what each had at the start.
    pub backends: f64,
    /// Backends alive at the start and gone at the end, whose run-time CPU is not counted.
    pub backends_ended: usize,
    pub all_postgres: f64,
}

impl DatabaseCpu {
    pub fn spent_since(&self, before: &DatabaseCpu) -> DatabaseCpuSpent {
        let backends = self
            .backends
            .iter()
            .map(|(pid, now)| now - before.backends.get(pid).copied().unwrap_or(0.0))
            .sum();
        let backends_ended = before
            .backends
            .keys()
            .filter(|pid| !self.backends.contains_key(pid))
            .count();
        DatabaseCpuSpent {
            backends,
            backends_ended,
            all_postgres: self.all_postgres - before.all_postgres,
        }
    }
}

struct ProcessCpu {
    /// utime + stime, seconds.
    own: f64,
    /// cutime + cstime: children waited for, seconds.
    children: f64,
    name: String,
}

fn process_cpu(pid: u32) -> Option<ProcessCpu> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the name start at field 3 (state): utime 14, stime 15, cutime 16, cstime 17.
    let tick = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some(ProcessCpu {
        own: (tick(14)? + tick(15)?) / USER_HZ,
        children: (tick(16)? + tick(17)?) / USER_HZ,
        name,
    })
}

/// Every `postgres` process's CPU, plus the children they have reaped.
fn all_postgres_cpu() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(process_cpu)
        .filter(|p| p.name == "postgres")
        .map(|p| p.own + p.children)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_url_names_the_run_and_its_schema_after_what_the_url_had() {
        assert_eq!(
            with_parameters("postgres://u@h/db", "lkbench_01", true),
            "postgres://u@h/db?application_name=lkbench_01&options%5Bsearch_path%5D=lkbench_01"
        );
        assert_eq!(
            with_parameters("postgres://u@h/db?sslmode=disable", "lkbench_01", false),
            "postgres://u@h/db?sslmode=disable&application_name=lkbench_01"
        );
    }

    #[test]
    fn cpu_spent_counts_backends_that_started_during_the_run_and_reports_those_that_ended() {
        let before = DatabaseCpu {
            backends: BTreeMap::from([(1, 2.0), (2, 1.0)]),
            all_postgres: 10.0,
        };
        let after = DatabaseCpu {
            backends: BTreeMap::from([(1, 3.5), (3, 0.5)]),
            all_postgres: 14.0,
        };
        let spent = after.spent_since(&before);
        assert!((spent.backends - 2.0).abs() < 1e-9, "{spent:?}");
        assert_eq!(spent.backends_ended, 1);
        assert!((spent.all_postgres - 4.0).abs() < 1e-9);
    }
}
