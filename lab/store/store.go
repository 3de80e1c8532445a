// Package store is the results database: builds, matrix cells, runs and their crashes.
// SQLite (a file under results/) by default, PostgreSQL for a lab shared by several hosts;
// the same SQL runs on both, and the schema is embedded and migrated on open.
//
// The invariant a matrix depends on to resume after SIGKILL: a run is inserted as
// "running" before its guest boots and becomes "finished" — outcome and crashes in one
// transaction — only after its artifacts are on disk. Counting reads finished runs only,
// so a killed run is never counted, and its row tells the next invocation what to redo.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Run states.
const (
	Running  = "running"
	Finished = "finished"
)

// Store is an open results database. It is safe for concurrent use.
type Store struct {
	db       *sql.DB
	Dialect  string // sqlite | postgres
	Location string // file path or DSN without password
}

// DefaultFile is the SQLite file inside a results directory.
const DefaultFile = "reprolab.db"

// Open opens (creating and migrating if needed) a database. dsn is a postgres:// or
// postgresql:// URL, or a path: a SQLite file, or a directory that gets DefaultFile.
func Open(ctx context.Context, dsn string) (*Store, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", redact(dsn), err)
		}
		s := &Store{db: db, Dialect: "postgres", Location: redact(dsn)}
		if err := s.migrate(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return s, nil
	}
	path := dsn
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, DefaultFile)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	// WAL lets `reprolab serve` and `matrix report` read while a matrix writes; the busy
	// timeout covers a second process (a resumed matrix) opening while the first exits.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and this turns lock contention
	// between our own goroutines into queueing instead of SQLITE_BUSY.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, Dialect: "sqlite", Location: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func redact(dsn string) string {
	if i := strings.Index(dsn, "@"); i > 0 {
		if j := strings.Index(dsn, "://"); j > 0 && j < i {
			return dsn[:j+3] + "…" + dsn[i:]
		}
	}
	return dsn
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("database %s: %w", s.Location, err)
	}
	ents, err := migrations.ReadDir("migrations")
	if err != nil {
		return err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		var v int
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err != nil {
			return fmt.Errorf("migration %s: name must start with a number", e.Name())
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, v).Scan(&n); err != nil {
			return fmt.Errorf("database %s: %w", s.Location, err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile("migrations/" + e.Name())
		if err != nil {
			return err
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, stmt := range splitSQL(string(body)) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("database %s: migration %s: %w", s.Location, e.Name(), err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, v, now()); err != nil {
			tx.Rollback()
			return fmt.Errorf("database %s: migration %s: %w", s.Location, e.Name(), err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("database %s: migration %s: %w", s.Location, e.Name(), err)
		}
	}
	return nil
}

// splitSQL splits a migration into statements (no semicolons inside literals in ours),
// dropping -- comments, so both drivers get one statement per Exec.
func splitSQL(body string) []string {
	var b strings.Builder
	for _, line := range strings.Split(body, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	var out []string
	for _, st := range strings.Split(b.String(), ";") {
		if st = strings.TrimSpace(st); st != "" {
			out = append(out, st)
		}
	}
	return out
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTS(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Matrix is a matrix spec as last run.
type Matrix struct {
	Name       string
	SpecPath   string
	SpecSHA256 string
	Created    time.Time
	Updated    time.Time
}

// PutMatrix records a matrix (idempotent; keeps its creation time).
func (s *Store) PutMatrix(ctx context.Context, m Matrix) error {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO matrices (name, spec_path, spec_sha256, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (name) DO UPDATE SET spec_path = excluded.spec_path, spec_sha256 = excluded.spec_sha256, updated_at = excluded.updated_at`,
		m.Name, m.SpecPath, m.SpecSHA256, t)
	return s.wrap(err)
}

// Matrices lists recorded matrices by name.
func (s *Store) Matrices(ctx context.Context) ([]Matrix, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, spec_path, spec_sha256, created_at, updated_at FROM matrices ORDER BY name`)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []Matrix
	for rows.Next() {
		var m Matrix
		var c, u string
		if err := rows.Scan(&m.Name, &m.SpecPath, &m.SpecSHA256, &c, &u); err != nil {
			return nil, s.wrap(err)
		}
		m.Created, m.Updated = parseTS(c), parseTS(u)
		out = append(out, m)
	}
	return out, s.wrap(rows.Err())
}

// Build is a kernel a cell runs.
type Build struct {
	ID, Matrix, Arch, Kernel, Config, Patches string
	Source                                    string // human description of the source
	Image, Vmlinux, Modules                   string
	Status                                    string // ok | failed
	Error                                     string
	Seconds                                   float64
	Cached                                    bool
	Created                                   time.Time
}

// PutBuild records (or updates) a build.
func (s *Store) PutBuild(ctx context.Context, b Build) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO builds (id, matrix, arch, kernel, config, patches, source, image, vmlinux, modules, status, error, seconds, cached, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (id) DO UPDATE SET source = excluded.source, image = excluded.image, vmlinux = excluded.vmlinux,
			modules = excluded.modules, status = excluded.status, error = excluded.error, seconds = excluded.seconds,
			cached = excluded.cached, created_at = excluded.created_at`,
		b.ID, b.Matrix, b.Arch, b.Kernel, b.Config, b.Patches, b.Source, b.Image, b.Vmlinux, b.Modules,
		b.Status, b.Error, b.Seconds, b2i(b.Cached), now())
	return s.wrap(err)
}

// Builds lists a matrix's builds.
func (s *Store) Builds(ctx context.Context, matrix string) ([]Build, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, matrix, arch, kernel, config, patches, source, image, vmlinux, modules, status, error, seconds, cached, created_at
		FROM builds WHERE matrix = $1 ORDER BY id`, matrix)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []Build
	for rows.Next() {
		var b Build
		var cached int
		var c string
		if err := rows.Scan(&b.ID, &b.Matrix, &b.Arch, &b.Kernel, &b.Config, &b.Patches, &b.Source, &b.Image, &b.Vmlinux, &b.Modules, &b.Status, &b.Error, &b.Seconds, &cached, &c); err != nil {
			return nil, s.wrap(err)
		}
		b.Cached, b.Created = cached != 0, parseTS(c)
		out = append(out, b)
	}
	return out, s.wrap(rows.Err())
}

// Cell is one point of a matrix.
type Cell struct {
	Matrix, ID                                    string
	Arch, Kernel, Config, Probe, Patches, Cmdline string
	ExpectCrash                                   bool
	PlannedRuns                                   int
	BuildID                                       string
	Position                                      int // order in the spec, for stable reports
}

// PutCells replaces a matrix's cells (a changed spec drops cells it no longer has;
// their runs stay in the database but are no longer reported).
func (s *Store) PutCells(ctx context.Context, matrix string, cells []Cell) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM cells WHERE matrix = $1`, matrix); err != nil {
		return s.wrap(err)
	}
	for _, c := range cells {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cells (matrix, cell, arch, kernel, config, probe, patches, cmdline, expect_crash, planned_runs, build_id, position)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			matrix, c.ID, c.Arch, c.Kernel, c.Config, c.Probe, c.Patches, c.Cmdline, b2i(c.ExpectCrash), c.PlannedRuns, c.BuildID, c.Position); err != nil {
			return s.wrap(err)
		}
	}
	return s.wrap(tx.Commit())
}

// Cells lists a matrix's cells in spec order.
func (s *Store) Cells(ctx context.Context, matrix string) ([]Cell, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT matrix, cell, arch, kernel, config, probe, patches, cmdline, expect_crash, planned_runs, build_id, position
		FROM cells WHERE matrix = $1 ORDER BY position`, matrix)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []Cell
	for rows.Next() {
		var c Cell
		var exp int
		if err := rows.Scan(&c.Matrix, &c.ID, &c.Arch, &c.Kernel, &c.Config, &c.Probe, &c.Patches, &c.Cmdline, &exp, &c.PlannedRuns, &c.BuildID, &c.Position); err != nil {
			return nil, s.wrap(err)
		}
		c.ExpectCrash = exp != 0
		out = append(out, c)
	}
	return out, s.wrap(rows.Err())
}

// Run is one boot of one cell.
type Run struct {
	ID, Matrix, Cell string
	Attempt          int // the k of r<k>: which of the cell's planned runs
	State            string
	Outcome          string
	Error            string
	Arch, Accel      string
	Host             string
	Kernel, Cmdline  string
	Dir              string // artifact directory
	Iterations       int
	CrashIteration   int
	Reproduced       bool
	BootSeconds      float64
	LoopSeconds      float64
	TimeToCrash      float64
	WallSeconds      float64
	Started          time.Time
	Finished         time.Time
	Crashes          []Crash
}

// Crash is one crash report of a run.
type Crash struct {
	Seq                    int
	Title, Type, Signature string
	ReportPath             string // relative to the run's Dir
}

// BeginRun records a run that is about to start. A leftover row with the same ID (an
// interrupted earlier attempt) must have been discarded first.
func (s *Store) BeginRun(ctx context.Context, r Run) error {
	if r.Started.IsZero() {
		r.Started = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO runs (run_id, matrix, cell, attempt, state, outcome, error, arch, accel, host, kernel, cmdline, dir,
			iterations, crash_iter, reproduced, boot_seconds, loop_seconds, time_to_crash, wall_seconds, started_at, finished_at)
		VALUES ($1, $2, $3, $4, $5, 'running', '', $6, '', $7, $8, $9, $10, 0, 0, 0, 0, 0, 0, 0, $11, '')`,
		r.ID, r.Matrix, r.Cell, r.Attempt, Running, r.Arch, r.Host, r.Kernel, r.Cmdline, r.Dir, ts(r.Started))
	return s.wrap(err)
}

// ErrNotRunning is returned when finishing a run that is not recorded as running.
var ErrNotRunning = errors.New("run is not recorded as running")

// FinishRun records a run's outcome and crashes in one transaction. Call it only once the
// run's artifacts are durable: from then on the run counts.
func (s *Store) FinishRun(ctx context.Context, r Run) error {
	if r.Finished.IsZero() {
		r.Finished = time.Now()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE runs SET state = $2, outcome = $3, error = $4, accel = $5, host = $6, kernel = $7, cmdline = $8,
			iterations = $9, crash_iter = $10, reproduced = $11, boot_seconds = $12, loop_seconds = $13, time_to_crash = $14,
			wall_seconds = $15, finished_at = $16, started_at = $17
		WHERE run_id = $1 AND state = 'running'`,
		r.ID, Finished, r.Outcome, r.Error, r.Accel, r.Host, r.Kernel, r.Cmdline, r.Iterations, r.CrashIteration,
		b2i(r.Reproduced), r.BootSeconds, r.LoopSeconds, r.TimeToCrash, r.WallSeconds, ts(r.Finished), ts(r.Started))
	if err != nil {
		return s.wrap(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("finishing run %s: %w", r.ID, ErrNotRunning)
	}
	for i, c := range r.Crashes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO crashes (run_id, seq, title, type, signature, report_path) VALUES ($1, $2, $3, $4, $5, $6)`,
			r.ID, i+1, c.Title, c.Type, c.Signature, c.ReportPath); err != nil {
			return s.wrap(err)
		}
	}
	return s.wrap(tx.Commit())
}

// DiscardRun deletes a run that did not finish (its crashes go with it).
func (s *Store) DiscardRun(ctx context.Context, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(err)
	}
	defer tx.Rollback()
	// Explicit, so the cascade does not depend on foreign keys being enabled.
	if _, err := tx.ExecContext(ctx, `DELETE FROM crashes WHERE run_id = $1`, id); err != nil {
		return s.wrap(err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE run_id = $1`, id); err != nil {
		return s.wrap(err)
	}
	return s.wrap(tx.Commit())
}

// Runs lists a matrix's runs (all states) with their crashes, by cell and attempt.
func (s *Store) Runs(ctx context.Context, matrix string) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT run_id, matrix, cell, attempt, state, outcome, error, arch, accel, host, kernel, cmdline, dir,
			iterations, crash_iter, reproduced, boot_seconds, loop_seconds, time_to_crash, wall_seconds, started_at, finished_at
		FROM runs WHERE matrix = $1 ORDER BY cell, attempt`, matrix)
	if err != nil {
		return nil, s.wrap(err)
	}
	var out []Run
	idx := map[string]int{}
	for rows.Next() {
		var r Run
		var rep int
		var st, fin string
		if err := rows.Scan(&r.ID, &r.Matrix, &r.Cell, &r.Attempt, &r.State, &r.Outcome, &r.Error, &r.Arch, &r.Accel, &r.Host, &r.Kernel, &r.Cmdline, &r.Dir,
			&r.Iterations, &r.CrashIteration, &rep, &r.BootSeconds, &r.LoopSeconds, &r.TimeToCrash, &r.WallSeconds, &st, &fin); err != nil {
			rows.Close()
			return nil, s.wrap(err)
		}
		r.Reproduced, r.Started, r.Finished = rep != 0, parseTS(st), parseTS(fin)
		idx[r.ID] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err)
	}
	crows, err := s.db.QueryContext(ctx, `SELECT c.run_id, c.seq, c.title, c.type, c.signature, c.report_path
		FROM crashes c JOIN runs r ON r.run_id = c.run_id WHERE r.matrix = $1 ORDER BY c.run_id, c.seq`, matrix)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer crows.Close()
	for crows.Next() {
		var id string
		var c Crash
		if err := crows.Scan(&id, &c.Seq, &c.Title, &c.Type, &c.Signature, &c.ReportPath); err != nil {
			return nil, s.wrap(err)
		}
		if i, ok := idx[id]; ok {
			out[i].Crashes = append(out[i].Crashes, c)
		}
	}
	return out, s.wrap(crows.Err())
}

func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("results database %s: %w", s.Location, err)
}
