//! `sqlx::migrate!` embeds the migration files at compile time; tell Cargo to rebuild this
//! crate when they change, or a stale schema would ship silently.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
