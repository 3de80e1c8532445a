package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// KCIDB v5 (kernelci/kcidb-io): checkouts → builds → tests, plus issues (one per
// distinct crash signature) and incidents (one per crashed run). Every id is
// "reprolab:<something unique within reprolab>". Artifacts are referred to by file://
// URLs under the results directory: a lab that publishes results rewrites the prefix.
type kcidbDoc struct {
	Version   kcidbVersion    `json:"version"`
	Checkouts []kcidbCheckout `json:"checkouts"`
	Builds    []kcidbBuild    `json:"builds"`
	Tests     []kcidbTest     `json:"tests"`
	Issues    []kcidbIssue    `json:"issues"`
	Incidents []kcidbIncident `json:"incidents"`
}

type kcidbVersion struct {
	Major int `json:"major"`
	Minor int `json:"minor"`
}

type kcidbCheckout struct {
	ID        string         `json:"id"`
	Origin    string         `json:"origin"`
	TreeName  string         `json:"tree_name,omitempty"`
	Comment   string         `json:"comment,omitempty"`
	Valid     bool           `json:"valid"`
	Patchset  []kcidbRes     `json:"patchset_files,omitempty"`
	Misc      map[string]any `json:"misc,omitempty"`
	StartTime string         `json:"start_time,omitempty"`
}

type kcidbRes struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

type kcidbBuild struct {
	ID           string         `json:"id"`
	Origin       string         `json:"origin"`
	CheckoutID   string         `json:"checkout_id"`
	Architecture string         `json:"architecture,omitempty"`
	ConfigName   string         `json:"config_name,omitempty"`
	Comment      string         `json:"comment,omitempty"`
	Status       string         `json:"status"`
	Duration     float64        `json:"duration"`
	StartTime    string         `json:"start_time,omitempty"`
	LogExcerpt   string         `json:"log_excerpt,omitempty"`
	Output       []kcidbRes     `json:"output_files,omitempty"`
	Misc         map[string]any `json:"misc,omitempty"`
}

type kcidbTest struct {
	ID         string         `json:"id"`
	Origin     string         `json:"origin"`
	BuildID    string         `json:"build_id"`
	Path       string         `json:"path"`
	Comment    string         `json:"comment,omitempty"`
	Status     string         `json:"status"`
	StartTime  string         `json:"start_time,omitempty"`
	Duration   float64        `json:"duration"`
	LogURL     string         `json:"log_url,omitempty"`
	LogExcerpt string         `json:"log_excerpt,omitempty"`
	Output     []kcidbRes     `json:"output_files,omitempty"`
	Misc       map[string]any `json:"misc,omitempty"`
}

type kcidbIssue struct {
	ID      string         `json:"id"`
	Version int            `json:"version"`
	Origin  string         `json:"origin"`
	Comment string         `json:"comment,omitempty"`
	Culprit kcidbCulprit   `json:"culprit"`
	Misc    map[string]any `json:"misc,omitempty"`
}

type kcidbCulprit struct {
	Code    bool `json:"code"`
	Tool    bool `json:"tool"`
	Harness bool `json:"harness"`
}

type kcidbIncident struct {
	ID           string `json:"id"`
	Origin       string `json:"origin"`
	IssueID      string `json:"issue_id"`
	IssueVersion int    `json:"issue_version"`
	BuildID      string `json:"build_id,omitempty"`
	TestID       string `json:"test_id,omitempty"`
	Present      bool   `json:"present"`
	Comment      string `json:"comment,omitempty"`
}

const origin = "reprolab"

var pathUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// pathPart makes a KCIDB test-path component ([a-zA-Z0-9_-]+).
func pathPart(s string) string {
	p := pathUnsafe.ReplaceAllString(s, "_")
	if p == "" {
		return "_"
	}
	return p
}

func (r *Report) fileURL(rel string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(r.ResultsDir, rel))}
	return u.String()
}

func kcidbTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// KCIDB writes the report as a KCIDB v5 submission.
func KCIDB(w io.Writer, r *Report) error {
	doc := kcidbDoc{Version: kcidbVersion{5, 0}, Checkouts: []kcidbCheckout{}, Builds: []kcidbBuild{}, Tests: []kcidbTest{}, Issues: []kcidbIssue{}, Incidents: []kcidbIncident{}}
	checkouts := map[string]bool{}
	builds := map[string]bool{}
	issues := map[string]bool{}
	// A checkout is the source plus its patch set; a prebuilt kernel is its own source.
	checkoutOf := func(c *Cell) string {
		patches := c.Patches
		if c.Build != nil && strings.HasPrefix(c.Build.ID, "prebuilt-") {
			patches = "none"
		}
		return origin + ":" + r.Matrix + "/" + c.Kernel + "/" + patches
	}
	buildOf := func(c *Cell) string {
		if c.BuildID == "" {
			return origin + ":" + r.Matrix + "/unbuilt/" + c.ID
		}
		return origin + ":" + c.BuildID
	}
	for _, c := range r.Cells {
		cid := checkoutOf(c)
		if !checkouts[cid] {
			checkouts[cid] = true
			co := kcidbCheckout{ID: cid, Origin: origin, TreeName: c.Kernel, Valid: c.Build == nil || c.Build.Status == "ok",
				Comment: "kernel " + c.Kernel + ", patches " + c.Patches}
			if c.Build != nil {
				co.Misc = map[string]any{"source": c.Build.Source}
			}
			doc.Checkouts = append(doc.Checkouts, co)
		}
		bid := buildOf(c)
		if !builds[bid] {
			builds[bid] = true
			b := kcidbBuild{ID: bid, Origin: origin, CheckoutID: cid, Architecture: c.Arch, ConfigName: c.Config, Status: "MISS"}
			if c.Build != nil {
				b.Duration = c.Build.Seconds
				b.StartTime = kcidbTime(c.Build.Created)
				b.Status = "PASS"
				if c.Build.Status != "ok" {
					b.Status = "FAIL"
					b.LogExcerpt = clip(c.Build.Error, 16384)
				}
				if c.Build.Image != "" {
					b.Output = append(b.Output, kcidbRes{Name: filepath.Base(c.Build.Image), URL: (&url.URL{Scheme: "file", Path: c.Build.Image}).String()})
				}
				b.Misc = map[string]any{"cached": c.Build.Cached, "source": c.Build.Source}
			}
			doc.Builds = append(doc.Builds, b)
		}
		for _, run := range c.Runs {
			tid := origin + ":" + run.ID
			t := kcidbTest{ID: tid, Origin: origin, BuildID: bid,
				Path:      "reprolab." + pathPart(r.Matrix) + "." + pathPart(c.ID),
				Status:    kcidbStatus(run.Outcome),
				StartTime: kcidbTime(run.Started), Duration: run.WallSeconds,
				LogURL:  r.fileURL(run.Dir + "/console.log"),
				Comment: "run " + run.ID + ": " + run.Outcome,
				Misc: map[string]any{"cell": c.ID, "probe_us": c.Probe, "cmdline": c.Cmdline, "outcome": run.Outcome, "iterations": run.Iterations,
					"loop_seconds": run.LoopSeconds, "time_to_crash_seconds": run.TimeToCrash, "accel": run.Accel, "expect_crash": c.ExpectCrash,
					"cell_verdict": c.Verdict, "cell_reason": c.Reason},
			}
			if run.Error != "" {
				t.LogExcerpt = clip(run.Error, 16384)
			}
			if rep := c.Reports[run.ID]; rep != "" {
				t.LogExcerpt = clip(rep, 16384)
			}
			t.Output = append(t.Output, kcidbRes{Name: "meta.json", URL: r.fileURL(run.Dir + "/meta.json")})
			for _, cr := range run.Crashes {
				if cr.ReportPath != "" {
					t.Output = append(t.Output, kcidbRes{Name: filepath.Base(cr.ReportPath), URL: r.fileURL(run.Dir + "/" + cr.ReportPath)})
				}
			}
			doc.Tests = append(doc.Tests, t)
			for _, cr := range run.Crashes {
				key := cr.Signature
				if key == "" {
					key = cr.Title
				}
				sum := sha256.Sum256([]byte(key))
				iid := origin + ":" + hex.EncodeToString(sum[:8])
				if !issues[iid] {
					issues[iid] = true
					doc.Issues = append(doc.Issues, kcidbIssue{ID: iid, Version: 1, Origin: origin, Comment: cr.Title,
						Culprit: kcidbCulprit{Code: true}, Misc: map[string]any{"signature": cr.Signature, "type": cr.Type}})
				}
				doc.Incidents = append(doc.Incidents, kcidbIncident{ID: origin + ":" + run.ID + "#" + strconv.Itoa(cr.Seq), Origin: origin, IssueID: iid,
					IssueVersion: 1, BuildID: bid, TestID: tid, Present: true, Comment: cr.Title})
			}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// kcidbStatus maps a run outcome to a KCIDB status: a kernel crash or hang is FAIL (the
// tested code is faulty), a kernel that does not boot is FAIL too, an infrastructure
// error is MISS (the harness failed; nothing is known about the kernel).
func kcidbStatus(outcome string) string {
	switch outcome {
	case "crashed", "hung", "boot-failed":
		return "FAIL"
	case "survived":
		return "PASS"
	case "infra-error":
		return "MISS"
	}
	return "ERROR"
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8Valid(s) {
		s = s[:len(s)-1]
	}
	return s
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
