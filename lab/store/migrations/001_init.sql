-- One schema for SQLite and PostgreSQL: only types and syntax both accept.
-- Timestamps are RFC 3339 text in UTC so both sort them the same way.

CREATE TABLE matrices (
    name        TEXT PRIMARY KEY,
    spec_path   TEXT NOT NULL,
    spec_sha256 TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- A kernel as a run uses it: built from source by lab/kbuild or a prebuilt image.
CREATE TABLE builds (
    id          TEXT PRIMARY KEY,
    matrix      TEXT NOT NULL,
    arch        TEXT NOT NULL,
    kernel      TEXT NOT NULL,
    config      TEXT NOT NULL,
    patches     TEXT NOT NULL,
    source      TEXT NOT NULL,
    image       TEXT NOT NULL,
    vmlinux     TEXT NOT NULL,
    modules     TEXT NOT NULL,
    status      TEXT NOT NULL, -- ok | failed
    error       TEXT NOT NULL,
    seconds     DOUBLE PRECISION NOT NULL,
    cached      INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE cells (
    matrix       TEXT NOT NULL,
    cell         TEXT NOT NULL,
    arch         TEXT NOT NULL,
    kernel       TEXT NOT NULL,
    config       TEXT NOT NULL,
    probe        TEXT NOT NULL,
    patches      TEXT NOT NULL,
    cmdline      TEXT NOT NULL,
    expect_crash INTEGER NOT NULL,
    planned_runs INTEGER NOT NULL,
    build_id     TEXT NOT NULL,
    position     INTEGER NOT NULL,
    PRIMARY KEY (matrix, cell)
);

-- A run row exists from before the guest boots. state = 'running' until its artifacts
-- (console.log, reports, meta.json) are durable on disk; then one transaction sets the
-- outcome, state = 'finished' and inserts its crashes. Only finished runs are counted.
CREATE TABLE runs (
    run_id        TEXT PRIMARY KEY,
    matrix        TEXT NOT NULL,
    cell          TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    state         TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    error         TEXT NOT NULL,
    arch          TEXT NOT NULL,
    accel         TEXT NOT NULL,
    host          TEXT NOT NULL,
    kernel        TEXT NOT NULL,
    cmdline       TEXT NOT NULL,
    dir           TEXT NOT NULL,
    iterations    INTEGER NOT NULL,
    crash_iter    INTEGER NOT NULL,
    reproduced    INTEGER NOT NULL,
    boot_seconds  DOUBLE PRECISION NOT NULL,
    loop_seconds  DOUBLE PRECISION NOT NULL,
    time_to_crash DOUBLE PRECISION NOT NULL,
    wall_seconds  DOUBLE PRECISION NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT NOT NULL
);
CREATE INDEX runs_by_cell ON runs (matrix, cell);

CREATE TABLE crashes (
    run_id      TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    title       TEXT NOT NULL,
    type        TEXT NOT NULL,
    signature   TEXT NOT NULL,
    report_path TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
