-- Every run records the host load it ran under (a race's rate changes several-fold with
-- it) and where its seconds went (lab/repro's Timings as JSON), so reports can show the
-- median split per cell and flag runs measured on a busy host. Old rows keep zeros and ''.
ALTER TABLE runs ADD COLUMN load1 DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN load5 DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN load15 DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN cores INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN timings TEXT NOT NULL DEFAULT '';
