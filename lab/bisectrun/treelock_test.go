package bisectrun

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// A second holder of the kept tree waits for the first, and its wait ends with its context.
func TestLockTree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trees", "x86_64-abc")
	unlock, err := LockTree(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := LockTree(ctx, dir, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock while held: %v, want the context's deadline", err)
	}
	got := make(chan error, 1)
	go func() {
		u, err := LockTree(context.Background(), dir, nil)
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter did not get the lock after it was released")
	}
}
