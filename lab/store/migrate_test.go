package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// v1DB is a results database written by the schema-1 matrix (commit e326219, see
// testdata/v1/make-v1.go): matrix v1, two cells × two runs, three finished (one crashed
// with a report), one left "running" as SIGKILL leaves it.
const v1DB = "testdata/v1/reprolab.db"

// copyV1 copies the v1 database so the test upgrades a copy, never the testdata.
func copyV1(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(v1DB)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), DefaultFile)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// describe is a backend-independent dump of what a matrix reads back.
func describe(t *testing.T, s *Store, campaign string) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	cs, err := s.Campaigns(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		fmt.Fprintf(&b, "campaign %s %s %s %s\n", c.ID, c.Kind, c.Name, c.SpecPath)
	}
	builds, err := s.Builds(ctx, campaign)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range builds {
		fmt.Fprintf(&b, "build %s %s %s %s cached=%v\n", x.ID, x.Arch, x.Kernel, x.Status, x.Cached)
	}
	cells, err := s.Cells(ctx, campaign)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cells {
		fmt.Fprintf(&b, "cell %s probe=%s expect=%v planned=%d build=%s\n", c.ID, c.Probe, c.ExpectCrash, c.PlannedRuns, c.BuildID)
	}
	runs, err := s.Runs(ctx, campaign)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		fmt.Fprintf(&b, "run %s group=%s #%d %s/%s build=%s dir=%s loop=%g ttc=%g evidence=%v\n", r.ID, r.Group, r.Attempt, r.State, r.Outcome, r.BuildID, r.Dir, r.LoopSeconds, r.TimeToCrash, r.Evidence())
		for _, c := range r.Crashes {
			fmt.Fprintf(&b, "  crash %d %q %s %s %s\n", c.Seq, c.Title, c.Type, c.Signature, c.ReportPath)
		}
	}
	return b.String()
}

const v1Want = `campaign matrix-v1 matrix v1 mkv1/matrix.yaml
build prebuilt-fake-x86_64 x86_64 fake ok cached=true
cell x86_64_fake_default_p0_none_plain probe=0 expect=false planned=2 build=prebuilt-fake-x86_64
cell x86_64_fake_default_p100_none_plain probe=100 expect=true planned=2 build=prebuilt-fake-x86_64
run v1-x86_64_fake_default_p0_none_plain-r1 group=x86_64_fake_default_p0_none_plain #1 finished/survived build=prebuilt-fake-x86_64 dir=v1-x86_64_fake_default_p0_none_plain-r1 loop=30 ttc=0 evidence=true
run v1-x86_64_fake_default_p0_none_plain-r2 group=x86_64_fake_default_p0_none_plain #2 finished/survived build=prebuilt-fake-x86_64 dir=v1-x86_64_fake_default_p0_none_plain-r2 loop=30 ttc=0 evidence=true
run v1-x86_64_fake_default_p100_none_plain-r1 group=x86_64_fake_default_p100_none_plain #1 finished/crashed build=prebuilt-fake-x86_64 dir=v1-x86_64_fake_default_p100_none_plain-r1 loop=30 ttc=12.5 evidence=true
  crash 1 "sysrq: Trigger a crash" SYSRQ sig-sysrq report-1.txt
run v1-x86_64_fake_default_p100_none_plain-r2 group=x86_64_fake_default_p100_none_plain #2 running/running build=prebuilt-fake-x86_64 dir=v1-x86_64_fake_default_p100_none_plain-r2 loop=0 ttc=0 evidence=false
`

// TestMigrateV1SQLite opens the database today's code wrote and upgrades it: every
// campaign, build, cell, run and crash reads back under the campaign id, and the
// upgraded store accepts the redo of the interrupted run.
func TestMigrateV1SQLite(t *testing.T) {
	ctx := context.Background()
	path := copyV1(t)
	upgradeV1(t, path)
	// Reopening applies nothing twice.
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	defer s.Close()
	ents, _ := migrations.ReadDir("migrations")
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ents) {
		t.Fatalf("%d migrations recorded (%v), want %d (one per file)", n, err, len(ents))
	}
}

// checkUpgradedUsable redoes the interrupted run on the upgraded schema and checks that
// finishing a trial twice is refused.
func checkUpgradedUsable(t *testing.T, s *Store) {
	ctx := context.Background()
	id := "v1-x86_64_fake_default_p100_none_plain-r2"
	if err := s.BeginRun(ctx, Run{ID: id, Campaign: "matrix-v1", Group: "x", Attempt: 2}); err == nil {
		t.Fatal("a second row for the same (campaign, trial, attempt) was accepted")
	}
	if err := s.DiscardRun(ctx, "matrix-v1", id, 2); err != nil {
		t.Fatal(err)
	}
	r := Run{ID: id, Campaign: "matrix-v1", Group: "x86_64_fake_default_p100_none_plain", Attempt: 2, Dir: id}
	if err := s.BeginRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Outcome, r.Crashes = "crashed", []Crash{{Title: "sysrq: Trigger a crash", Signature: "sig-sysrq"}}
	if err := s.FinishRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	runs, _ := s.Runs(ctx, "matrix-v1")
	crashed := 0
	for _, r := range runs {
		if r.Evidence() && len(r.Crashes) == 1 {
			crashed++
		}
	}
	if len(runs) != 4 || crashed != 2 {
		t.Fatalf("%d runs, %d crashed with their report after the redo", len(runs), crashed)
	}
}

// TestMigrateV1Postgres loads the same v1 rows into a PostgreSQL schema at version 1
// and upgrades it with the same migration.
func TestMigrateV1Postgres(t *testing.T) {
	dsn := os.Getenv("REPROLAB_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("REPROLAB_TEST_POSTGRES not set (a postgres:// DSN to test against)")
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := fmt.Sprintf("reprolab_v1_%d", os.Getpid())
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec("DROP SCHEMA " + schema + " CASCADE")
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	pdsn := dsn + sep + "search_path=" + schema
	db, err := sql.Open("pgx", pdsn)
	if err != nil {
		t.Fatal(err)
	}
	old := &Store{db: db, Dialect: "postgres", Location: "v1 test schema"}
	if err := old.migrateTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	src, err := sql.Open("sqlite", "file:"+copyV1(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"matrices", "builds", "cells", "runs", "crashes"} {
		copyTable(t, src, db, tbl)
	}
	src.Close()
	db.Close()
	upgradeV1(t, pdsn)
}

// upgradeV1 opens a v1 database (upgrading it), checks what it reads back and that it
// takes the redo of the interrupted run.
func upgradeV1(t *testing.T, dsn string) {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := describe(t, s, "matrix-v1"); got != v1Want {
		t.Fatalf("after migration:\n%s\nwant:\n%s", got, v1Want)
	}
	checkUpgradedUsable(t, s)
}

// copyTable copies every row of a schema-1 table, column by column.
func copyTable(t *testing.T, from, to *sql.DB, table string) {
	t.Helper()
	rows, err := from.Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	ph := make([]string, len(cols))
	for i := range cols {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	ins := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(cols, ", "), strings.Join(ph, ", "))
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if _, err := to.Exec(ins, vals...); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
	}
}
