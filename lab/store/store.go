// Package store is the results database: campaigns (matrices, validations, bisections),
// their builds, matrix cells, runs and the runs' crashes.
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
		// Several hosts (workers, an enqueuer) may open a fresh database at once.
		if err := s.Exclusive(ctx, "schema", func() error { return s.migrate(ctx) }); err != nil {
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

// Exclusive runs fn while holding a database-wide lock named key, so processes on several
// hosts sharing a PostgreSQL do not, say, migrate the same schema at once (a session-level
// advisory lock on a connection of its own). On SQLite fn just runs: one host, and its
// writers already queue on the file lock.
func (s *Store) Exclusive(ctx context.Context, key string, fn func() error) error {
	if s.Dialect != "postgres" {
		return fn()
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.wrap(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext($1))`, "reprolab:"+key); err != nil {
		return s.wrap(err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext($1))`, "reprolab:"+key)
	return fn()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) migrate(ctx context.Context) error { return s.migrateTo(ctx, 1<<30) }

// migrateTo applies the embedded migrations up to version upTo (tests build old schemas).
func (s *Store) migrateTo(ctx context.Context, upTo int) error {
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
		if v > upTo {
			break
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

// Campaign is a matrix, validation, bisection or nightly as last started.
type Campaign struct {
	ID         string // unique: "matrix-<name>", "validate-<name>", ...
	Kind       string // matrix | validate | bisect | nightly
	Name       string
	SpecPath   string
	SpecSHA256 string
	Created    time.Time
	Updated    time.Time
}

// PutCampaign records a campaign (idempotent; keeps its creation time).
func (s *Store) PutCampaign(ctx context.Context, c Campaign) error {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO campaigns (id, kind, name, spec_path, spec_sha256, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, spec_path = excluded.spec_path,
			spec_sha256 = excluded.spec_sha256, updated_at = excluded.updated_at`,
		c.ID, c.Kind, c.Name, c.SpecPath, c.SpecSHA256, t)
	return s.wrap(err)
}

// Campaigns lists recorded campaigns by id; with kind given, only those of that kind.
func (s *Store) Campaigns(ctx context.Context, kind string) ([]Campaign, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, kind, name, spec_path, spec_sha256, created_at, updated_at FROM campaigns
		WHERE $1 = '' OR kind = $1 ORDER BY id`, kind)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []Campaign
	for rows.Next() {
		var c Campaign
		var cr, up string
		if err := rows.Scan(&c.ID, &c.Kind, &c.Name, &c.SpecPath, &c.SpecSHA256, &cr, &up); err != nil {
			return nil, s.wrap(err)
		}
		c.Created, c.Updated = parseTS(cr), parseTS(up)
		out = append(out, c)
	}
	return out, s.wrap(rows.Err())
}

// Matrix is a matrix campaign as `matrix report` lists it.
type Matrix struct {
	Name       string
	SpecPath   string
	SpecSHA256 string
	Created    time.Time
	Updated    time.Time
}

// Matrices lists the recorded matrix campaigns by name.
func (s *Store) Matrices(ctx context.Context) ([]Matrix, error) {
	cs, err := s.Campaigns(ctx, "matrix")
	if err != nil {
		return nil, err
	}
	var out []Matrix
	for _, c := range cs {
		out = append(out, Matrix{Name: c.Name, SpecPath: c.SpecPath, SpecSHA256: c.SpecSHA256, Created: c.Created, Updated: c.Updated})
	}
	return out, nil
}

// Build is a kernel a campaign's runs use.
type Build struct {
	ID, Campaign            string
	Arch, Kernel            string // the kernel's name
	Config, Patches         string // labels (a matrix's config and patch-set names)
	Source                  string // human description of the source
	Image, Vmlinux, Modules string
	Version                 string
	Status                  string // ok | failed
	Error                   string
	Seconds                 float64
	Cached                  bool
	Compiled                int // C files make compiled (0 for a cached or prebuilt kernel)
	Created                 time.Time
}

// PutBuild records (or updates) a build of a campaign.
func (s *Store) PutBuild(ctx context.Context, b Build) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO builds (campaign, id, arch, kernel, config, patches, source, image, vmlinux, modules, version, status, error, seconds, cached, compiled, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT (campaign, id) DO UPDATE SET arch = excluded.arch, kernel = excluded.kernel, config = excluded.config,
			patches = excluded.patches, source = excluded.source, image = excluded.image, vmlinux = excluded.vmlinux,
			modules = excluded.modules, version = excluded.version, status = excluded.status, error = excluded.error,
			seconds = excluded.seconds, cached = excluded.cached, compiled = excluded.compiled, created_at = excluded.created_at`,
		b.Campaign, b.ID, b.Arch, b.Kernel, b.Config, b.Patches, b.Source, b.Image, b.Vmlinux, b.Modules, b.Version,
		b.Status, b.Error, b.Seconds, b2i(b.Cached), b.Compiled, now())
	return s.wrap(err)
}

// Builds lists a campaign's builds.
func (s *Store) Builds(ctx context.Context, campaign string) ([]Build, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT campaign, id, arch, kernel, config, patches, source, image, vmlinux, modules, version, status, error, seconds, cached, compiled, created_at
		FROM builds WHERE campaign = $1 ORDER BY id`, campaign)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []Build
	for rows.Next() {
		var b Build
		var cached int
		var c string
		if err := rows.Scan(&b.Campaign, &b.ID, &b.Arch, &b.Kernel, &b.Config, &b.Patches, &b.Source, &b.Image, &b.Vmlinux, &b.Modules, &b.Version,
			&b.Status, &b.Error, &b.Seconds, &cached, &b.Compiled, &c); err != nil {
			return nil, s.wrap(err)
		}
		b.Cached, b.Created = cached != 0, parseTS(c)
		out = append(out, b)
	}
	return out, s.wrap(rows.Err())
}

// Cell is one point of a matrix campaign.
type Cell struct {
	Campaign, ID                                  string
	Arch, Kernel, Config, Probe, Patches, Cmdline string
	ExpectCrash                                   bool
	PlannedRuns                                   int
	BuildID                                       string
	Position                                      int // order in the spec, for stable reports
}

// PutCells replaces a matrix campaign's cells (a changed spec drops cells it no longer
// has; their runs stay in the database but are no longer reported).
func (s *Store) PutCells(ctx context.Context, campaign string, cells []Cell) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM cells WHERE campaign = $1`, campaign); err != nil {
		return s.wrap(err)
	}
	for _, c := range cells {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cells (campaign, cell, arch, kernel, config, probe, patches, cmdline, expect_crash, planned_runs, build_id, position)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			campaign, c.ID, c.Arch, c.Kernel, c.Config, c.Probe, c.Patches, c.Cmdline, b2i(c.ExpectCrash), c.PlannedRuns, c.BuildID, c.Position); err != nil {
			return s.wrap(err)
		}
	}
	return s.wrap(tx.Commit())
}

// Cells lists a matrix campaign's cells in spec order.
func (s *Store) Cells(ctx context.Context, campaign string) ([]Cell, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT campaign, cell, arch, kernel, config, probe, patches, cmdline, expect_crash, planned_runs, build_id, position
		FROM cells WHERE campaign = $1 ORDER BY position`, campaign)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []Cell
	for rows.Next() {
		var c Cell
		var exp int
		if err := rows.Scan(&c.Campaign, &c.ID, &c.Arch, &c.Kernel, &c.Config, &c.Probe, &c.Patches, &c.Cmdline, &exp, &c.PlannedRuns, &c.BuildID, &c.Position); err != nil {
			return nil, s.wrap(err)
		}
		c.ExpectCrash = exp != 0
		out = append(out, c)
	}
	return out, s.wrap(rows.Err())
}

// Run is one attempt of one trial of a campaign: one boot.
type Run struct {
	ID       string // the trial id, unique within the campaign (a matrix: <matrix>-<cell>-r<k>)
	Campaign string
	Group    string // what the run measures: a matrix cell, "baseline/x86_64", a commit
	Attempt  int    // a matrix: the k of r<k>; elsewhere the retry of the trial
	BuildID  string
	State    string
	Outcome  string
	Error    string
	Arch     string
	Accel    string
	Host     string
	Kernel   string
	Cmdline  string
	Dir      string // artifact directory, relative to the results directory
	// Iterations completed; CrashIteration the one running when the crash came (0: boot/setup).
	Iterations     int
	CrashIteration int
	Reproduced     bool
	BootSeconds    float64
	LoopSeconds    float64
	TimeToCrash    float64
	WallSeconds    float64
	Started        time.Time
	Finished       time.Time
	Crashes        []Crash
	// Load is the host's 1/5/15-minute load average when the run started, on Cores cores
	// (zero when unknown); Timings is lab/repro's per-phase split as JSON ("" when unknown).
	Load    [3]float64
	Cores   int
	Timings string
}

// Outcomes that say nothing about the kernel (lab/repro's names).
const (
	OutcomeInfraError  = "infra-error"
	OutcomeInterrupted = "interrupted"
)

// Evidence says whether the run tells anything about the kernel: it finished, and the
// lab (not the kernel) did not fail it. An infrastructure error is recorded, never
// evidence; a boot failure is the kernel's and counts.
func (r Run) Evidence() bool {
	if r.State != Finished {
		return false
	}
	switch r.Outcome {
	case "", Running, OutcomeInfraError, OutcomeInterrupted:
		return false
	}
	return true
}

// Crash is one crash report of a run.
type Crash struct {
	Seq                    int
	Title, Type, Signature string
	ReportPath             string // relative to the run's Dir
}

// BeginRun records a run that is about to start. A leftover row with the same key (an
// interrupted earlier attempt) must have been discarded first: inserting it twice fails.
func (s *Store) BeginRun(ctx context.Context, r Run) error {
	if r.Started.IsZero() {
		r.Started = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO runs (campaign, trial_id, attempt, grp, build_id, state, outcome, error, arch, accel, host, kernel, cmdline, dir,
			iterations, crash_iter, reproduced, boot_seconds, loop_seconds, time_to_crash, wall_seconds, started_at, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'running', '', $7, '', $8, $9, $10, $11, 0, 0, 0, 0, 0, 0, 0, $12, '')`,
		r.Campaign, r.ID, r.Attempt, r.Group, r.BuildID, Running, r.Arch, r.Host, r.Kernel, r.Cmdline, r.Dir, ts(r.Started))
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
	res, err := tx.ExecContext(ctx, `UPDATE runs SET state = $4, outcome = $5, error = $6, accel = $7, host = $8, kernel = $9, cmdline = $10,
			iterations = $11, crash_iter = $12, reproduced = $13, boot_seconds = $14, loop_seconds = $15, time_to_crash = $16,
			wall_seconds = $17, finished_at = $18, started_at = $19, load1 = $20, load5 = $21, load15 = $22, cores = $23, timings = $24
		WHERE campaign = $1 AND trial_id = $2 AND attempt = $3 AND state = 'running'`,
		r.Campaign, r.ID, r.Attempt, Finished, r.Outcome, r.Error, r.Accel, r.Host, r.Kernel, r.Cmdline, r.Iterations, r.CrashIteration,
		b2i(r.Reproduced), r.BootSeconds, r.LoopSeconds, r.TimeToCrash, r.WallSeconds, ts(r.Finished), ts(r.Started),
		r.Load[0], r.Load[1], r.Load[2], r.Cores, r.Timings)
	if err != nil {
		return s.wrap(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("finishing run %s/%s attempt %d: %w", r.Campaign, r.ID, r.Attempt, ErrNotRunning)
	}
	for i, c := range r.Crashes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO crashes (campaign, trial_id, attempt, seq, title, type, signature, report_path)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			r.Campaign, r.ID, r.Attempt, i+1, c.Title, c.Type, c.Signature, c.ReportPath); err != nil {
			return s.wrap(err)
		}
	}
	return s.wrap(tx.Commit())
}

// DiscardRun deletes a run (normally one that did not finish) with its crashes.
func (s *Store) DiscardRun(ctx context.Context, campaign, id string, attempt int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(err)
	}
	defer tx.Rollback()
	// Explicit, so the cascade does not depend on foreign keys being enabled.
	if _, err := tx.ExecContext(ctx, `DELETE FROM crashes WHERE campaign = $1 AND trial_id = $2 AND attempt = $3`, campaign, id, attempt); err != nil {
		return s.wrap(err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE campaign = $1 AND trial_id = $2 AND attempt = $3`, campaign, id, attempt); err != nil {
		return s.wrap(err)
	}
	return s.wrap(tx.Commit())
}

// Runs lists a campaign's runs (all states) with their crashes, by group, trial and attempt.
func (s *Store) Runs(ctx context.Context, campaign string) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT trial_id, campaign, grp, attempt, build_id, state, outcome, error, arch, accel, host, kernel, cmdline, dir,
			iterations, crash_iter, reproduced, boot_seconds, loop_seconds, time_to_crash, wall_seconds, started_at, finished_at,
			load1, load5, load15, cores, timings
		FROM runs WHERE campaign = $1 ORDER BY grp, attempt, trial_id`, campaign)
	if err != nil {
		return nil, s.wrap(err)
	}
	var out []Run
	type key struct {
		id      string
		attempt int
	}
	idx := map[key]int{}
	for rows.Next() {
		var r Run
		var rep int
		var st, fin string
		if err := rows.Scan(&r.ID, &r.Campaign, &r.Group, &r.Attempt, &r.BuildID, &r.State, &r.Outcome, &r.Error, &r.Arch, &r.Accel, &r.Host, &r.Kernel, &r.Cmdline, &r.Dir,
			&r.Iterations, &r.CrashIteration, &rep, &r.BootSeconds, &r.LoopSeconds, &r.TimeToCrash, &r.WallSeconds, &st, &fin,
			&r.Load[0], &r.Load[1], &r.Load[2], &r.Cores, &r.Timings); err != nil {
			rows.Close()
			return nil, s.wrap(err)
		}
		r.Reproduced, r.Started, r.Finished = rep != 0, parseTS(st), parseTS(fin)
		idx[key{r.ID, r.Attempt}] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err)
	}
	crows, err := s.db.QueryContext(ctx, `SELECT trial_id, attempt, seq, title, type, signature, report_path
		FROM crashes WHERE campaign = $1 ORDER BY trial_id, attempt, seq`, campaign)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer crows.Close()
	for crows.Next() {
		var k key
		var c Crash
		if err := crows.Scan(&k.id, &k.attempt, &c.Seq, &c.Title, &c.Type, &c.Signature, &c.ReportPath); err != nil {
			return nil, s.wrap(err)
		}
		if i, ok := idx[k]; ok {
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

// DB is the database handle, for packages that share the results database and its
// transactions (lab/queue keeps its job tables beside the results).
func (s *Store) DB() *sql.DB { return s.db }

// Run is one recorded run, or nil when (campaign, trial, attempt) has no row.
func (s *Store) Run(ctx context.Context, campaign, id string, attempt int) (*Run, error) {
	var r Run
	err := s.db.QueryRowContext(ctx, `SELECT state, outcome, dir, host FROM runs WHERE campaign = $1 AND trial_id = $2 AND attempt = $3`,
		campaign, id, attempt).Scan(&r.State, &r.Outcome, &r.Dir, &r.Host)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	r.Campaign, r.ID, r.Attempt = campaign, id, attempt
	return &r, nil
}

// RebindCells points a campaign's cells from one build id to another: cells planned
// against a build still to be made by a worker ("pending-<key>") get its real id once built.
func (s *Store) RebindCells(ctx context.Context, campaign, from, to string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE cells SET build_id = $3 WHERE campaign = $1 AND build_id = $2`, campaign, from, to)
	return s.wrap(err)
}
