#!/usr/bin/env bash
# Scenario (a) of docs/performance.md on one instance on SQLite, one on PostgreSQL and two
# sharing PostgreSQL, one after the other, then a table of the three (docs/performance.md,
# "Stores"). Builds the production binaries (release with link-time optimisation) first.
#
#   scripts/bench-stores.sh                                # 10,000 users, 1,000 devices, 30 s each
#   scripts/bench-stores.sh --duration 15 --users 2000 --devices 500
#   scripts/bench-stores.sh --json stores.json             # also keep the three reports
#
# The PostgreSQL database is LATCHKEY_BENCH_DATABASE_URL (default: the development machine's
# trust-auth server, postgres://postgres@127.0.0.1:5432/test); each PostgreSQL run works in a
# schema of its own there and drops it after. Other arguments go to `latchkey-bench stores`
# (see `target/production/latchkey-bench stores --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

export LATCHKEY_BENCH_DATABASE_URL=${LATCHKEY_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}

cargo build --profile production -p latchkey -p latchkey-bench
exec target/production/latchkey-bench stores "$@"
