package matrix

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/render"
	"github.com/reprolab/reprolab/lab/repro"
	"github.com/reprolab/reprolab/lab/store"
)

const repoRoot = "../.."

// requireGuests skips when this host cannot boot the CI matrix: no QEMU, or Debian's
// kernels not fetched (images/debian-kernels.sh). Nothing else is a reason to skip.
func requireGuests(t testing.TB) {
	t.Helper()
	for _, q := range []string{"qemu-system-x86_64", "qemu-system-aarch64"} {
		if _, err := exec.LookPath(q); err != nil {
			t.Skipf("%s not installed", q)
		}
	}
	for _, a := range []string{"amd64", "arm64"} {
		m, _ := filepath.Glob(filepath.Join(kbuild.DefaultCacheDir(), "debian", a, "boot", "vmlinuz-*"))
		if len(m) == 0 {
			t.Skipf("no Debian %s kernel in the cache: run images/debian-kernels.sh", a)
		}
	}
}

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// TestMain removes the CLI buildCLI built: every test run used to leave a 37 MB
// reprolab-matrix-test-* directory in the temp dir.
func TestMain(m *testing.M) {
	code := m.Run()
	if cliPath != "" {
		os.RemoveAll(filepath.Dir(cliPath))
	}
	os.Exit(code)
}

// buildCLI builds the real reprolab binary once per test process.
func buildCLI(t testing.TB) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "reprolab-matrix-test-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "reprolab")
		out, err := exec.Command("go", "build", "-o", cliPath, "../../cmd/reprolab").CombinedOutput()
		if err != nil {
			cliErr = fmt.Errorf("go build ./cmd/reprolab: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

type cellCount struct{ runs, crashed, crashRows int }

// counts reads per-cell finished runs and crashes from a results database, failing on
// any run that is not finished (a kill must never leave one counted or lingering).
func counts(t *testing.T, results string) (map[string]cellCount, []store.Run) {
	t.Helper()
	st, err := store.Open(context.Background(), results)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.Runs(context.Background(), CampaignID("ci-smoke"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]cellCount{}
	for _, r := range runs {
		if r.State != store.Finished {
			t.Errorf("run %s left in state %s", r.ID, r.State)
		}
		c := out[r.Group]
		c.runs++
		if r.Outcome == string(repro.Crashed) {
			c.crashed++
		}
		c.crashRows += len(r.Crashes)
		out[r.Group] = c
	}
	return out, runs
}

// checkArtifacts: every finished run has its evidence on disk and agrees with the
// database; no directory of a discarded run is left behind.
func checkArtifacts(t *testing.T, results string, runs []store.Run) {
	t.Helper()
	want := map[string]bool{}
	for _, r := range runs {
		want[r.Dir] = true
		meta, err := repro.ReadMeta(filepath.Join(results, r.Dir))
		if err != nil {
			t.Errorf("run %s: %v", r.ID, err)
			continue
		}
		if string(meta.Outcome) != r.Outcome {
			t.Errorf("run %s: meta.json says %s, database %s", r.ID, meta.Outcome, r.Outcome)
		}
		if st, err := os.Stat(filepath.Join(results, r.Dir, "console.log")); err != nil || st.Size() == 0 {
			t.Errorf("run %s: console.log missing or empty (%v)", r.ID, err)
		}
		for _, c := range r.Crashes {
			if data, err := os.ReadFile(filepath.Join(results, r.Dir, c.ReportPath)); err != nil || !strings.Contains(string(data), "sysrq") {
				t.Errorf("run %s: crash report %s: %v", r.ID, c.ReportPath, err)
			}
		}
	}
	ents, _ := os.ReadDir(results)
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "ci-smoke-") && !want[e.Name()] {
			t.Errorf("leftover run directory %s (not a finished run)", e.Name())
		}
	}
}

func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(buildCLI(t), args...)
	cmd.Dir = repoRoot
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan if the test binary dies
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestCISmokeMatrix runs the CI matrix for real (Debian kernels, both arches, probe
// parameter 0/1, 2 runs per cell, one sysrq-c crash cell) through the CLI, then checks
// the database, the artifacts and every report format; then kills a second invocation
// with SIGKILL at several points and checks that resuming ends with the same counts.
func TestCISmokeMatrix(t *testing.T) {
	requireGuests(t)
	results := t.TempDir()
	out, code := runCLI(t, "matrix", "reproducers/ci-smoke", "--results", results, "--jobs", "2")
	if code != 0 {
		t.Fatalf("reprolab matrix exited %d:\n%s", code, out)
	}
	full, runs := counts(t, results)
	want := map[string]cellCount{
		"x86_64_debian-6.1_default_p0_none_plain":       {2, 0, 0},
		"x86_64_debian-6.1_default_p1_none_plain":       {2, 0, 0},
		"arm64_debian-6.1_default_p0_none_plain":        {2, 0, 0},
		"arm64_debian-6.1_default_p1_none_plain":        {2, 0, 0},
		"x86_64_debian-6.1_default_p0_none_sysrq-crash": {2, 2, 2},
	}
	if fmt.Sprint(full) != fmt.Sprint(want) {
		t.Fatalf("per-cell counts %v, want %v\n%s", full, want, out)
	}
	for _, r := range runs {
		if r.Accel == "" || r.Host == "" || r.BootSeconds <= 0 || r.Finished.Before(r.Started) {
			t.Errorf("run %s recorded without accel/host/timings: %+v", r.ID, r)
		}
		if strings.Contains(r.Group, "plain") && (r.Outcome != "survived" || r.Iterations != 2) {
			t.Errorf("run %s: %s after %d iterations, want survived after 2", r.ID, r.Outcome, r.Iterations)
		}
		if !strings.Contains(r.Cmdline, "ci_smoke.delay_us=") {
			t.Errorf("run %s: probe parameter missing from %q", r.ID, r.Cmdline)
		}
	}
	checkArtifacts(t, results, runs)
	checkReports(t, results)
	t.Run("kill-resume", func(t *testing.T) { killResume(t, full) })
}

func checkReports(t *testing.T, results string) {
	dir := ReportDir(results, "ci-smoke")
	// JUnit against the XSD, KCIDB against the v5 schema.
	if err := render.CheckJUnit(filepath.Join(dir, "junit.xml")); err != nil {
		t.Error(err)
	}
	kc, err := os.ReadFile(filepath.Join(dir, "kcidb.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := render.CheckKCIDB(kc); err != nil {
		t.Error(err)
	}
	var k struct {
		Tests     []struct{ Status string }
		Incidents []json.RawMessage
		Issues    []json.RawMessage
	}
	json.Unmarshal(kc, &k)
	fails := 0
	for _, x := range k.Tests {
		if x.Status == "FAIL" {
			fails++
		}
	}
	if len(k.Tests) != 10 || fails != 2 || len(k.Incidents) != 2 || len(k.Issues) != 1 {
		t.Errorf("kcidb: %d tests (%d FAIL), %d incidents, %d issues", len(k.Tests), fails, len(k.Incidents), len(k.Issues))
	}
	junit, _ := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if !strings.Contains(string(junit), `tests="5" failures="0" errors="0"`) {
		t.Errorf("junit.xml counts wrong:\n%s", junit)
	}
	var j struct {
		Totals render.Totals
		Cells  []struct {
			ID, Verdict string
			Runs        []json.RawMessage
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	if err := json.Unmarshal(data, &j); err != nil || j.Totals.Pass != 5 || j.Totals.Crashes != 2 || len(j.Cells) != 5 {
		t.Errorf("report.json: %v %+v", err, j.Totals)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(md), "| x86_64 | 0 | sysrq-crash | crash | 2/2 | 2 |") {
		t.Errorf("report.md lacks the crash row:\n%s", md)
	}
	checkHTML(t, filepath.Join(dir, "index.html"))
}

// checkHTML renders the page in headless Chromium: the screenshot must show the heat-map
// (its red and green cells are counted in the pixels) and the DOM must hold the guest's
// console line with <script> as text, not as an element.
func checkHTML(t *testing.T, page string) {
	bin := ""
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Fatal("checking the HTML report needs headless Chromium: apt-get install chromium")
	}
	abs, _ := filepath.Abs(page)
	html, _ := os.ReadFile(abs)
	if strings.Contains(string(html), "<script") || !strings.Contains(string(html), "&lt;script&gt;alert(") {
		t.Error("console markup not escaped in index.html")
	}
	shot := filepath.Join(t.TempDir(), "report.png")
	chrome := func(extra ...string) string {
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir()}, extra...)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append(args, "file://"+abs)...).Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", extra, err)
		}
		return string(out)
	}
	dom := chrome("--dump-dom")
	if !strings.Contains(dom, "&lt;script&gt;alert('console')&lt;/script&gt;") || strings.Contains(dom, "<script>alert") {
		t.Error("the browser's DOM does not show the console's <script> line as text")
	}
	if !strings.Contains(dom, `id="heatmap"`) {
		t.Error("no heat-map in the DOM")
	}
	chrome("--screenshot="+shot, "--window-size=1280,900")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	near := func(r, g, b uint32, R, G, B int) bool {
		d := func(a uint32, b int) int { x := int(a>>8) - b; return x * x }
		return d(r, R)+d(g, G)+d(b, B) < 3*20*20
	}
	red, green := 0, 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if near(r, g, b, 221, 60, 60) {
				red++
			}
			if near(r, g, b, 60, 221, 60) {
				green++
			}
		}
	}
	// One crashing cell (all runs) and four clean ones, each ~170×50 px.
	if red < 3000 || green < 4*3000 {
		t.Errorf("screenshot %s: %d red and %d green heat-map pixels; the heat-map is not visible", shot, red, green)
	}
	t.Logf("screenshot %s: %d red, %d green heat-map pixels", shot, red, green)
	if keep := os.Getenv("REPROLAB_KEEP_SCREENSHOT"); keep != "" {
		data, _ := os.ReadFile(shot)
		os.WriteFile(keep, data, 0o644)
	}
}

var summaryRE = regexp.MustCompile(`(\d+) kept from before, (\d+) interrupted runs redone`)

// killResume runs the x86_64 cells (3 cells × 2 runs) and SIGKILLs reprolab at several
// points — while guests boot, right after a run finished, right after a crash was seen —
// then resumes until it completes, and compares the counts with the uninterrupted run.
func killResume(t *testing.T, full map[string]cellCount) {
	bin := buildCLI(t)
	results := t.TempDir()
	args := []string{"matrix", "reproducers/ci-smoke", "--results", results, "--jobs", "2", "--only", "arch=x86_64"}
	// SIGKILL while guests boot, right after a run finished, right after a crash was
	// seen; then Ctrl-C (SIGINT) while guests boot, which must stop cleanly with 130.
	killAt := []struct {
		after string
		sig   syscall.Signal
	}{{"boot: x86_64", syscall.SIGKILL}, {"runs, ", syscall.SIGKILL}, {"crash: kernel panic", syscall.SIGKILL}, {"boot: x86_64", syscall.SIGINT}}
	redone := 0
	for i := 0; ; i++ {
		cmd := exec.Command(bin, args...)
		cmd.Dir = repoRoot
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var log strings.Builder
		killed := false
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			if m := summaryRE.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[2])
				redone += n
			}
			// A trial restored from a snapshot says "restore:" where a fresh one says "boot:".
			if i < len(killAt) && !killed && (strings.Contains(line, killAt[i].after) ||
				killAt[i].after == "boot: x86_64" && strings.Contains(line, "restore: x86_64")) {
				// Let the guest start, so the kill has a QEMU child to orphan.
				var children []int
				for wait := 0; wait < 20 && len(children) == 0; wait++ {
					time.Sleep(100 * time.Millisecond)
					children = childPids(cmd.Process.Pid)
				}
				cmd.Process.Signal(killAt[i].sig)
				killed = true
				t.Logf("invocation %d: %v after %q (children %v)", i+1, killAt[i].sig, line, children)
				defer checkGone(t, children)
			}
		}
		err = cmd.Wait()
		if i >= len(killAt) {
			if err != nil {
				t.Fatalf("final invocation: %v\n%s", err, log.String())
			}
			break
		}
		if !killed {
			t.Logf("invocation %d finished before reaching %q", i+1, killAt[i].after)
		} else if killAt[i].sig == syscall.SIGINT {
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != 130 || !strings.Contains(log.String(), "run the same command again to resume") {
				t.Errorf("Ctrl-C: exit %d (want 130 and a resume hint):\n%s", code, log.String())
			}
			// A graceful stop discards its own interrupted runs: nothing is left running.
			counts(t, results)
		}
		if i > len(killAt)+2 {
			t.Fatal("matrix never completed")
		}
	}
	got, runs := counts(t, results)
	for cell, c := range got {
		if full[cell] != c {
			t.Errorf("cell %s after kills: %+v, uninterrupted: %+v", cell, c, full[cell])
		}
	}
	if len(got) != 3 || len(runs) != 6 {
		t.Errorf("%d cells, %d runs after resuming, want 3 and 6", len(got), len(runs))
	}
	if redone == 0 {
		t.Error("no invocation reported an interrupted run redone: the kills hit nothing")
	}
	checkArtifacts(t, results, runs)
}

// childPids lists the direct children of pid (QEMU guests, helper processes).
func childPids(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

// checkGone fails if a child of a killed reprolab (a QEMU guest) outlived it.
func checkGone(t *testing.T, pids []int) {
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pids {
		for {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
			if err != nil || strings.Contains(string(data), ") Z ") {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("process %d outlived the SIGKILLed matrix: %s", p, data)
				syscall.Kill(p, syscall.SIGKILL)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
