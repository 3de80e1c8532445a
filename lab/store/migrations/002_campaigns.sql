-- Builds and runs belong to a campaign (a matrix, a validation, a bisection, a nightly)
-- instead of a matrix and a cell. A matrix named N becomes campaign 'matrix-N' of kind
-- 'matrix'; a cell becomes the group its runs measure. Tables are rebuilt (SQLite cannot
-- change a primary key in place); every row of 001 is carried over.

CREATE TABLE campaigns (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL, -- matrix | validate | bisect | nightly
    name        TEXT NOT NULL,
    spec_path   TEXT NOT NULL,
    spec_sha256 TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
INSERT INTO campaigns (id, kind, name, spec_path, spec_sha256, created_at, updated_at)
    SELECT 'matrix-' || name, 'matrix', name, spec_path, spec_sha256, created_at, updated_at FROM matrices;

-- A build id is unique within its campaign (two campaigns may share a cached kernel).
CREATE TABLE builds2 (
    campaign    TEXT NOT NULL,
    id          TEXT NOT NULL,
    arch        TEXT NOT NULL,
    kernel      TEXT NOT NULL,
    config      TEXT NOT NULL,
    patches     TEXT NOT NULL,
    source      TEXT NOT NULL,
    image       TEXT NOT NULL,
    vmlinux     TEXT NOT NULL,
    modules     TEXT NOT NULL,
    version     TEXT NOT NULL,
    status      TEXT NOT NULL, -- ok | failed
    error       TEXT NOT NULL,
    seconds     DOUBLE PRECISION NOT NULL,
    cached      INTEGER NOT NULL,
    compiled    INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (campaign, id)
);
INSERT INTO builds2 (campaign, id, arch, kernel, config, patches, source, image, vmlinux, modules, version, status, error, seconds, cached, compiled, created_at)
    SELECT 'matrix-' || matrix, id, arch, kernel, config, patches, source, image, vmlinux, modules, '', status, error, seconds, cached, 0, created_at FROM builds;
DROP TABLE builds;
ALTER TABLE builds2 RENAME TO builds;

-- A cell keeps its columns; its matrix becomes its campaign.
ALTER TABLE cells RENAME COLUMN matrix TO campaign;
UPDATE cells SET campaign = 'matrix-' || campaign;

-- A run is one attempt of one trial: unique on (campaign, trial_id, attempt), so a
-- resumed campaign can neither count a trial twice nor lose one.
CREATE TABLE runs2 (
    campaign      TEXT NOT NULL,
    trial_id      TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    grp           TEXT NOT NULL, -- what the run measures: a matrix cell, a commit, ...
    build_id      TEXT NOT NULL,
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
    finished_at   TEXT NOT NULL,
    PRIMARY KEY (campaign, trial_id, attempt)
);
INSERT INTO runs2 (campaign, trial_id, attempt, grp, build_id, state, outcome, error, arch, accel, host, kernel, cmdline, dir,
        iterations, crash_iter, reproduced, boot_seconds, loop_seconds, time_to_crash, wall_seconds, started_at, finished_at)
    SELECT 'matrix-' || r.matrix, r.run_id, r.attempt, r.cell,
        COALESCE((SELECT c.build_id FROM cells c WHERE 'matrix-' || r.matrix = c.campaign AND c.cell = r.cell), ''),
        r.state, r.outcome, r.error, r.arch, r.accel, r.host, r.kernel, r.cmdline, r.dir,
        r.iterations, r.crash_iter, r.reproduced, r.boot_seconds, r.loop_seconds, r.time_to_crash, r.wall_seconds, r.started_at, r.finished_at
    FROM runs r;

CREATE TABLE crashes2 (
    campaign    TEXT NOT NULL,
    trial_id    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    title       TEXT NOT NULL,
    type        TEXT NOT NULL,
    signature   TEXT NOT NULL,
    report_path TEXT NOT NULL,
    PRIMARY KEY (campaign, trial_id, attempt, seq),
    FOREIGN KEY (campaign, trial_id, attempt) REFERENCES runs2 (campaign, trial_id, attempt) ON DELETE CASCADE
);
INSERT INTO crashes2 (campaign, trial_id, attempt, seq, title, type, signature, report_path)
    SELECT r.campaign, r.trial_id, r.attempt, c.seq, c.title, c.type, c.signature, c.report_path
    FROM crashes c JOIN runs o ON o.run_id = c.run_id JOIN runs2 r ON r.campaign = 'matrix-' || o.matrix AND r.trial_id = o.run_id;
DROP TABLE crashes;
DROP TABLE runs;
ALTER TABLE runs2 RENAME TO runs;
ALTER TABLE crashes2 RENAME TO crashes;
CREATE INDEX runs_by_group ON runs (campaign, grp);
DROP TABLE matrices;
