package matrix

import (
	"context"
	"github.com/reprolab/reprolab/lab/fault"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprolab/reprolab/lab/store"
)

// BuildReport's "no such matrix" says what is there, and never "no matrix x (it has: x)"
// for a matrix that was started but has no cells yet.
func TestReportUnknownMatrix(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), store.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := BuildReport(ctx, st, "seed", t.TempDir()); err == nil || !strings.Contains(err.Error(), "holds no matrices yet") {
		t.Errorf("empty database: %v", err)
	}
	if err := st.PutCampaign(ctx, store.Campaign{ID: CampaignID("memcg-writeback-null"), Kind: "matrix", Name: "memcg-writeback-null"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"memcg-writeback-null": `matrix "memcg-writeback-null" in ` + st.Location + ` has no cells recorded yet`,
		"memcg-writeback-nul":  `no matrix "memcg-writeback-nul" in ` + st.Location + ` (did you mean "memcg-writeback-null"?) (it has: memcg-writeback-null)`,
	} {
		_, err := BuildReport(ctx, st, name, t.TempDir())
		if !fault.IsInput(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want bad input saying %q", name, err, want)
		}
	}
}
