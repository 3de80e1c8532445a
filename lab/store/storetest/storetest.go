// Package storetest gives tests a fresh, empty results database: a SQLite file in the
// test's temp dir, or a new PostgreSQL database on the server REPROLAB_TEST_POSTGRES
// names (its role needs CREATEDB), dropped when the test ends. Fresh databases keep
// tests that share a server from seeing each other's jobs and runs.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// Dialects are the databases a test runs on: "sqlite" always, "postgres" when
// REPROLAB_TEST_POSTGRES is set.
func Dialects() []string {
	if os.Getenv("REPROLAB_TEST_POSTGRES") != "" {
		return []string{"sqlite", "postgres"}
	}
	return []string{"sqlite"}
}

// DSN is a fresh database of the dialect. PostgreSQL tests skip, saying why, when
// REPROLAB_TEST_POSTGRES is not set.
func DSN(t testing.TB, dialect string) string {
	t.Helper()
	if dialect == "sqlite" {
		return filepath.Join(t.TempDir(), "reprolab.db")
	}
	base := os.Getenv("REPROLAB_TEST_POSTGRES")
	if base == "" {
		t.Skip("REPROLAB_TEST_POSTGRES not set (a postgres:// DSN whose role may CREATEDB; make test sets one)")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("REPROLAB_TEST_POSTGRES: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "reprolab_t_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("creating test database on %s: %v", u.Host, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping test database %s: %v", name, err)
		}
		admin.Close()
	})
	u.Path = "/" + name
	return u.String()
}
