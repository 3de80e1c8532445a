#!/usr/bin/env bash
# Make sure a local PostgreSQL (Debian's `postgresql`, installed by setup-host.sh) runs and
# holds the test role and database, then print the DSN the tests use. Idempotent; prints
# nothing (and the PostgreSQL tests skip, saying so) when PostgreSQL is not installed or we
# are not root. The role may create databases: lab/fleet tests make a fresh one per test.
set -euo pipefail
dsn=postgres://reprolab:reprolab@127.0.0.1/reprolab_test
command -v pg_lsclusters >/dev/null || { echo "test-postgres: postgresql not installed; PostgreSQL tests will skip" >&2; exit 0; }
[ "$(id -u)" = 0 ] || { echo "test-postgres: not root; PostgreSQL tests will skip" >&2; exit 0; }
read -r ver name _ < <(pg_lsclusters -h | head -1) || { echo "test-postgres: no cluster; PostgreSQL tests will skip" >&2; exit 0; }
pg_ctlcluster "$ver" "$name" start >/dev/null 2>&1 || true
psql_() { su postgres -c "psql -qtAX -c \"$1\"" ; }
for _ in $(seq 30); do psql_ 'select 1' >/dev/null 2>&1 && break; sleep 1; done
[ "$(psql_ "select 1 from pg_roles where rolname='reprolab'")" = 1 ] ||
	psql_ "create role reprolab login password 'reprolab' createdb" >&2
[ "$(psql_ "select 1 from pg_database where datname='reprolab_test'")" = 1 ] ||
	psql_ "create database reprolab_test owner reprolab" >&2
echo "$dsn"
