package render

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/stats"
	"github.com/reprolab/reprolab/lab/store"
	"github.com/reprolab/reprolab/lab/verdict"
)

var update = flag.Bool("update", false, "rewrite golden files")

// seedReport loads testdata/seed-matrix.json: the seed matrix with the figures measured
// by hand on this machine (DESIGN.md), and the real v4.11 x86_64 console of the bug as
// every crashed run's console, with one line of markup a guest printed.
func seedReport(t *testing.T) *Report {
	t.Helper()
	data, err := os.ReadFile("testdata/seed-matrix.json")
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Matrix, Spec string
		Cells        []struct {
			Cell store.Cell
			Runs []store.Run
		}
	}
	if err := json.Unmarshal(data, &in); err != nil {
		t.Fatal(err)
	}
	console, err := os.ReadFile("testdata/results/console-x86_64-v4.11.log")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(console), "\n")
	var crashText string
	for i, l := range lines {
		if strings.Contains(l, "BUG: unable to handle kernel NULL pointer") {
			crashText = strings.Join(lines[i:i+40], "\n")
			break
		}
	}
	tail := strings.Join(lines[len(lines)-30:], "\n") + "\n[   12.000000] reprolab: <script>alert('console')</script>"
	abs, _ := filepath.Abs("testdata/results")
	r := &Report{Matrix: in.Matrix, SpecPath: in.Spec, Generated: time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC), RunsBase: "..", ResultsDir: abs}
	axisVals := map[string][]string{}
	names := []string{"arch", "kernel", "config", "probe", "patches", "cmdline"}
	builds := map[string]bool{}
	for _, ic := range in.Cells {
		c := &Cell{Cell: ic.Cell, Runs: ic.Runs, Console: map[string]string{}, Reports: map[string]string{}}
		if !builds[c.BuildID] {
			builds[c.BuildID] = true
			r.Builds = append(r.Builds, store.Build{ID: c.BuildID, Arch: c.Arch, Kernel: c.Kernel, Status: "ok", Source: "kernel.org " + c.Kernel, Image: "/cache/kbuild/out/x/bzImage", Seconds: 600})
		}
		c.Build = &r.Builds[len(r.Builds)-1]
		var samples []stats.Sample
		for _, run := range c.Runs {
			s := stats.Sample{Outcome: run.Outcome, LoopSeconds: run.LoopSeconds, TimeToCrash: run.TimeToCrash, Reproduced: run.Reproduced}
			for _, cr := range run.Crashes {
				s.Crashes = append(s.Crashes, stats.Signature{Signature: cr.Signature, Title: cr.Title})
			}
			samples = append(samples, s)
			if run.Outcome == "crashed" {
				c.Console[run.ID] = tail
				c.Reports[run.ID] = crashText
			}
		}
		c.Stats = stats.Summarize(samples, 0.95)
		for _, n := range names {
			v := c.AxisValue(n)
			found := false
			for _, x := range axisVals[n] {
				found = found || x == v
			}
			if !found {
				axisVals[n] = append(axisVals[n], v)
			}
		}
		r.Cells = append(r.Cells, c)
	}
	for _, n := range names {
		r.Axes = append(r.Axes, Axis{Name: n, Values: axisVals[n]})
	}
	judge(r, seedPolicy)
	return r
}

// seedPolicy is the seed matrix.yaml's clean: rule.
var seedPolicy = verdict.Policy{RatePerHour: 300, Confidence: 0.99}

// judge sets the verdicts as lab/matrix does (render itself never decides one).
func judge(r *Report, p verdict.Policy) {
	in := make([]verdict.Cell, len(r.Cells))
	for i, c := range r.Cells {
		in[i] = verdict.Cell{Cell: c.Cell, Build: c.Build, Stats: c.Stats}
	}
	for i, j := range verdict.Judge(in, p) {
		r.Cells[i].Verdict, r.Cells[i].Reason = j.Verdict, j.Reason
		if j.Clean != nil {
			e := CleanEvidence(*j.Clean)
			r.Cells[i].Clean = &e
		}
	}
	r.Fixes = nil
	for _, f := range verdict.Fixes(in) {
		r.Fixes = append(r.Fixes, FixVerdict{r.Cells[f.Candidate], r.Cells[f.Baseline], f.CleanHours, f.Confidence, f.Conservative, f.HoursFor99})
	}
	r.Tally()
}

func TestVerdicts(t *testing.T) {
	r := seedReport(t)
	want := map[string]string{
		"x86_64_v4.11_seed_p100_none_plain": Pass, // crashed 3/3 as expected
		"arm64_v4.11_seed_p100_none_plain":  Pass, // 2 crashes + 1 infra error
		"x86_64_v4.13_seed_p100_none_plain": Pass, // clean as expected
		"x86_64_v4.11_seed_p100_fix_plain":  Pass,
	}
	for _, c := range r.Cells {
		if w, ok := want[c.ID]; ok && c.Verdict != w {
			t.Errorf("%s: verdict %s (%s), want %s", c.ID, c.Verdict, c.Reason, w)
		}
	}
	if r.Totals.Pass != 12 || r.Totals.Crashes != 5 || r.Totals.InfraErrors != 1 || r.Totals.Runs != 36 {
		t.Fatalf("totals %+v", r.Totals)
	}
	// The surprise JUnit must fail: flip one expectation.
	r.Cells[0].ExpectCrash = true
	c := r.Cells[1] // x86_64 v4.11 p100 none: crashed
	c.ExpectCrash = false
	judge(r, seedPolicy)
	if r.Cells[0].Verdict != Fail {
		t.Fatalf("expected crash that never came: %s", r.Cells[0].Verdict)
	}
	if c.Verdict != Fail || !strings.Contains(c.Reason, "unexpected") {
		t.Fatalf("unexpected crash judged %s: %s", c.Verdict, c.Reason)
	}
}

// Without a rate the spec names, v4.13's clean cells (no crashing counterpart: v4.13 has
// the fix) cannot pass, and every format says why.
func TestCleanNotConclusive(t *testing.T) {
	r := seedReport(t)
	judge(r, verdict.Policy{})
	var c *Cell
	for _, x := range r.Cells {
		if x.ID == "x86_64_v4.13_seed_p100_none_plain" {
			c = x
		}
	}
	if c == nil || c.Verdict != Incomplete || !strings.Contains(c.Reason, "clean, not yet conclusive") || c.Clean == nil || c.Clean.Conclusive {
		t.Fatalf("v4.13 without a named rate: %+v", c)
	}
	var md, js, ju, kc bytes.Buffer
	for _, f := range []func() error{
		func() error { return Markdown(&md, r) }, func() error { return JSON(&js, r) },
		func() error { return JUnit(&ju, r) }, func() error { return KCIDB(&kc, r) },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	for name, out := range map[string]string{"md": md.String(), "json": js.String(), "junit": ju.String(), "kcidb": kc.String()} {
		if !strings.Contains(out, "clean, not yet conclusive") {
			t.Errorf("%s does not say the clean cell is not yet conclusive", name)
		}
	}
}

func TestFixVerdicts(t *testing.T) {
	fv := seedReport(t).Fixes
	if len(fv) != 2 {
		t.Fatalf("%d fix verdicts, want 2 (x86_64 and arm64 v4.11 probe 100 fix vs none)", len(fv))
	}
	for _, v := range fv {
		if v.Candidate.Patches != "fix" || v.Baseline.Patches != "none" || v.Conservative < 0.99 || v.Conservative > v.Confidence {
			t.Errorf("%+v", v)
		}
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := Markdown(&b, seedReport(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "seed.md", b.Bytes())
}

func TestHTML(t *testing.T) {
	var b bytes.Buffer
	if err := HTML(&b, seedReport(t)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{`id="heatmap"`, "<svg", "&lt;script&gt;alert(", "test_clear_page_writeback",
		`href="../memcg-writeback-null-x86_64_v4.11_seed_p100_none_plain-r1/console.log"`,
		`href="../memcg-writeback-null-x86_64_v4.11_seed_p100_none_plain-r1/report-1.txt"`} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(out, "<script") {
		t.Error("console markup reached the page unescaped")
	}
	if strings.Contains(out, "ZgotmplZ") {
		t.Error("html/template rejected a value (ZgotmplZ)")
	}
}

func TestJSON(t *testing.T) {
	r := seedReport(t)
	// A cell with no data has no rate: null, not NaN (which is not JSON).
	r.Cells[0].Runs = nil
	r.Cells[0].Stats = stats.Summarize(nil, 0.95)
	var b bytes.Buffer
	if err := JSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cells []struct {
			ID   string
			Rate *float64 `json:"crashes_per_hour"`
			Runs []struct{ Outcome string }
		}
		Fixes []json.RawMessage `json:"fix_confidence"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cells) != 12 || doc.Cells[0].Rate != nil || doc.Cells[2].Rate == nil || len(doc.Cells[2].Runs) != 3 || len(doc.Fixes) != 2 {
		t.Fatalf("%s", b.String()[:400])
	}
}

func TestJUnit(t *testing.T) {
	r := seedReport(t)
	r.Cells[0].ExpectCrash = true // one surprise: expected crash never came
	r.Cells[1].Runs = nil         // and one cell not run yet
	r.Cells[1].Stats = stats.Summarize(nil, 0.95)
	judge(r, seedPolicy)
	var b bytes.Buffer
	if err := JUnit(&b, r); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "junit.xml")
	os.WriteFile(path, b.Bytes(), 0o644)
	if err := CheckJUnit(path); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Tests != 12 || doc.Failures != 1 || doc.Skipped != 1 || doc.Suites[0].Cases[0].Failure == nil {
		t.Fatalf("tests %d failures %d skipped %d", doc.Tests, doc.Failures, doc.Skipped)
	}
	// The validator is not a rubber stamp.
	bad := strings.Replace(b.String(), `failures="1"`, `failures="one"`, 1)
	os.WriteFile(path, []byte(bad), 0o644)
	if err := CheckJUnit(path); err == nil {
		t.Fatal("xmllint accepted failures=\"one\"")
	}
}

func TestKCIDB(t *testing.T) {
	var b bytes.Buffer
	if err := KCIDB(&b, seedReport(t)); err != nil {
		t.Fatal(err)
	}
	if err := CheckKCIDB(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	var doc kcidbDoc
	json.Unmarshal(b.Bytes(), &doc)
	if len(doc.Tests) != 36 || len(doc.Issues) != 1 || len(doc.Incidents) != 5 || len(doc.Builds) != 6 || len(doc.Checkouts) != 3 {
		t.Fatalf("checkouts %d builds %d tests %d issues %d incidents %d", len(doc.Checkouts), len(doc.Builds), len(doc.Tests), len(doc.Issues), len(doc.Incidents))
	}
	for _, mutate := range []struct{ name, from, to string }{
		{"status outside the enum", `"status": "PASS"`, `"status": "OK"`},
		{"id without origin prefix", `"id": "reprolab:memcg`, `"id": "memcg`},
		{"unknown property", `"origin": "reprolab",`, `"origin": "reprolab", "colour": "red",`},
		{"wrong major version", `"major": 5`, `"major": 4`},
	} {
		bad := strings.Replace(b.String(), mutate.from, mutate.to, 1)
		if bad == b.String() {
			t.Fatalf("%s: mutation did not apply", mutate.name)
		}
		if err := CheckKCIDB([]byte(bad)); err == nil {
			t.Errorf("%s: schema accepted it", mutate.name)
		}
	}
}

// TestWriteSample writes the seed report's HTML where RENDER_SAMPLE_DIR says, for a look
// in a browser; it does nothing otherwise.
func TestWriteSample(t *testing.T) {
	dir := os.Getenv("RENDER_SAMPLE_DIR")
	if dir == "" {
		t.Skip("RENDER_SAMPLE_DIR not set")
	}
	f, err := os.Create(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := HTML(f, seedReport(t)); err != nil {
		t.Fatal(err)
	}
}

func TestCheckReports(t *testing.T) {
	dir := t.TempDir()
	r := seedReport(t)
	for name, f := range map[string]func(io.Writer, *Report) error{"junit.xml": JUnit, "kcidb.json": KCIDB} {
		var b bytes.Buffer
		if err := f(&b, r); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644)
	}
	cs := CheckReports(dir)
	if len(cs) != 2 || cs[0].Err != nil || cs[1].Err != nil {
		t.Fatalf("%+v", cs)
	}
	os.WriteFile(filepath.Join(dir, "kcidb.json"), []byte(`{"version": {"major": 4}}`), 0o644)
	if cs := CheckReports(dir); len(cs) != 2 || cs[1].Err == nil {
		t.Fatalf("a KCIDB v4 document passed: %+v", cs)
	}
	if cs := CheckReports(t.TempDir()); len(cs) != 0 {
		t.Fatalf("an empty folder has nothing to check: %+v", cs)
	}
}
