// Package cihistory builds the synthetic kernel history CI bisects and validates on: git
// commits on top of the very tree the CI kernel is built from (Debian's linux-source-6.1,
// kconfigs/ci-6.1-x86_64.yaml), small harmless commits around one that injects a crash
// the ci-race reproducer (reproducers/ci-race) hits every few seconds of looping, and a
// later commit that removes it, plus a candidate fix patch and a no-op patch.
//
// CI cannot fetch a kernel history, so it makes one: `make ci-history` runs
// cmd/reprolab-ci-history, which calls Build and writes the result as JSON
// (REPROLAB_CI_HISTORY_JSON). Commits are made with lab/vcs/vcstest's fixed identity and
// clock, so the ids are the same on every machine with the same tarball. The injected
// fault touches one small file (fs/proc/loadavg.c) and most harmless commits only
// Documentation/, so moving a kept build tree between them recompiles a file or two.
package cihistory

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/reprolab/reprolab/lab/atomicfile"
	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/kbuild"
	"github.com/reprolab/reprolab/lab/vcs/vcstest"
)

// Recipe changes whenever the history Build makes changes; a recorded history of another
// recipe is rebuilt.
const Recipe = "ci-history-v2"

// repoName is the repository's folder under CacheDir/ci-history. Give a new Recipe a new
// name too: kept trees registered in the old repository must not be orphaned by a rebuild.
const repoName = "repo-v2.git"

// Title is the crash title the injected fault produces (lab/report's title for a BUG() in
// loadavg_proc_show).
const Title = "kernel BUG in loadavg_proc_show"

// Entry is one commit of the history.
type Entry struct {
	Hash    string `json:"hash"`
	Subject string `json:"subject"`
	// Kind is harmless, bad (injects the crash) or fix (removes it).
	Kind string `json:"kind"`
}

// History is what `make ci-history` records (REPROLAB_CI_HISTORY_JSON).
type History struct {
	Recipe string `json:"recipe"`
	Repo   string `json:"repo"` // a bare repository
	// Base is the import of the CI kernel's source: the good end of a cause bisection.
	Base    string  `json:"base"`
	Commits []Entry `json:"commits"` // after Base, oldest first
	Bad     string  `json:"bad"`     // the commit that injects the crash (cause bisection's answer)
	Fix     string  `json:"fix"`     // the commit that removes it (fix bisection's answer)
	// LastBad is Fix's parent: the bad end of a cause bisection and the tree the candidate
	// patches apply to (as do Bad and every commit between).
	LastBad string `json:"last_bad"`
	Head    string `json:"head"` // the fixed end of a fix bisection
	Title   string `json:"expect_title"`
	// Reproducer, KernelSpec: the reproducer that hits the crash and the CI kernel's spec
	// (fragments, probes) a build of any commit uses.
	Reproducer string `json:"reproducer"`
	KernelSpec string `json:"kernel_spec"`
	// FixPatch removes the crash from Bad..LastBad (the fix commit's diff as a mail);
	// NoopPatch changes a comment in the same file and fixes nothing.
	FixPatch  string            `json:"fix_patch"`
	NoopPatch string            `json:"noop_patch"`
	Source    map[string]string `json:"source"`
}

// Options say where the history goes and where the project's files are.
type Options struct {
	CacheDir string // default lab/cache's folder
	Root     string // the project checkout (reproducers/, kconfigs/)
	JSON     string // where the record goes; default CacheDir/ci-history.json
}

// Load reads a recorded history and checks that its repository is there.
func Load(path string) (*History, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fault.Inputf("CI history: %v (run `make ci-history`)", err)
	}
	var h History
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fault.Inputf("CI history %s: %v", path, err)
	}
	if _, err := os.Stat(h.Repo); err != nil {
		return nil, fault.Inputf("CI history %s: repository %v (run `make ci-history`)", path, err)
	}
	return &h, nil
}

// step is one commit of the recipe: edits of the work tree, then the subject.
type step struct {
	kind, subject string
	edit          func(r *vcstest.Repo)
}

const loadavg = "fs/proc/loadavg.c"

// The injected fault: one read of /proc/loadavg in 1024 hits BUG(), the way a rare race
// would. The reproducer reads the file 1000 times per iteration (~62% of iterations): one
// crash a second of looping keeps the clean time a good bisection step needs in seconds.
const (
	badInclude = "#include <linux/pid_namespace.h>\n"
	badAnchor  = "\tget_avenrun(avnrun, FIXED_1/200, 0);\n"
	badCode    = "\t/*\n\t * reprolab CI history: an injected fault standing in for a rare race.\n" +
		"\t * One read in 1024 of /proc/loadavg trips it.\n\t */\n" +
		"\tif (get_random_u32() % 1024 == 0)\n\t\tBUG();\n\n"
)

func doc(n int) func(r *vcstest.Repo) {
	return func(r *vcstest.Repo) {
		p := "Documentation/reprolab-ci-history.rst"
		old := ""
		if data, err := os.ReadFile(filepath.Join(r.Dir, p)); err == nil {
			old = string(data)
		} else {
			old = "reprolab CI history\n===================\n\n"
		}
		r.Write(p, old+fmt.Sprintf("Step %d: a documentation-only change.\n", n))
	}
}

func comment(file, anchor string, n int) func(r *vcstest.Repo) {
	return func(r *vcstest.Repo) {
		r.Edit(file, anchor, fmt.Sprintf("/* reprolab CI history: harmless comment %d */\n", n)+anchor)
	}
}

const uptimeAnchor = "static int uptime_proc_show("

var recipe = []step{
	{"harmless", "Documentation: reprolab CI history, step 1", doc(1)},
	{"harmless", "proc: uptime: a comment (step 2)", comment("fs/proc/uptime.c", uptimeAnchor, 2)},
	{"harmless", "Documentation: reprolab CI history, step 3", doc(3)},
	{"harmless", "Documentation: reprolab CI history, step 4", doc(4)},
	{"harmless", "proc: version: a comment (step 5)", comment("fs/proc/version.c", "static int version_proc_show(", 5)},
	{"harmless", "Documentation: reprolab CI history, step 6", doc(6)},
	{"harmless", "Documentation: reprolab CI history, step 7", doc(7)},
	{"bad", "proc: loadavg: sample the random pool on every read (injects the CI crash)", func(r *vcstest.Repo) {
		r.Edit(loadavg, badInclude, badInclude+"#include <linux/random.h>\n")
		r.Edit(loadavg, badAnchor, badCode+badAnchor)
	}},
	{"harmless", "Documentation: reprolab CI history, step 9", doc(9)},
	{"harmless", "proc: uptime: a comment (step 10)", comment("fs/proc/uptime.c", uptimeAnchor, 10)},
	{"harmless", "Documentation: reprolab CI history, step 11", doc(11)},
	{"harmless", "Documentation: reprolab CI history, step 12", doc(12)},
	{"fix", "proc: loadavg: do not BUG() on a random draw (fixes the CI crash)", func(r *vcstest.Repo) {
		r.Edit(loadavg, badCode, "")
		r.Edit(loadavg, "#include <linux/random.h>\n", "")
	}},
	{"harmless", "Documentation: reprolab CI history, step 14", doc(14)},
	{"harmless", "proc: uptime: a comment (step 15)", comment("fs/proc/uptime.c", uptimeAnchor, 15)},
	{"harmless", "Documentation: reprolab CI history, step 16", doc(16)},
}

// Build makes the history under CacheDir/ci-history, or returns the recorded one when it
// is there and of this recipe. tb reports fatal git failures (a test's t, or a command's
// adapter that exits).
func Build(ctx context.Context, tb vcstest.TB, o Options) (*History, error) {
	if o.CacheDir == "" {
		o.CacheDir = kbuild.DefaultCacheDir()
	}
	dir := filepath.Join(o.CacheDir, "ci-history")
	jsonPath := o.JSON
	if jsonPath == "" {
		jsonPath = filepath.Join(o.CacheDir, "ci-history.json")
	}
	// The repository and its own record are named by the recipe and never deleted while
	// they are current: bisections register kept worktrees in it (lab/vcs Checkout), and
	// a history rebuilt under them would orphan those trees. jsonPath is a copy.
	own := filepath.Join(dir, "history.json")
	reproducer := filepath.Join(o.Root, "reproducers", "ci-race", "repro.yaml")
	kernelSpec := filepath.Join(o.Root, "kconfigs", "ci-6.1-x86_64.yaml")
	if h, err := Load(own); err == nil && h.Recipe == Recipe {
		if out, err := exec.CommandContext(ctx, "git", "-C", h.Repo, "rev-parse", "main").Output(); err == nil && strings.TrimSpace(string(out)) == h.Head {
			// The same history for another checkout (CI's fresh clone) names its files.
			h.Reproducer, h.KernelSpec = reproducer, kernelSpec
			if old, err := Load(jsonPath); err == nil && old.Reproducer == reproducer && old.KernelSpec == kernelSpec && old.Head == h.Head {
				return h, nil
			}
			return h, write(jsonPath, h)
		}
	}
	spec, err := kbuild.LoadSpec(filepath.Join(o.Root, "kconfigs", "ci-6.1-x86_64.yaml"))
	if err != nil {
		return nil, err
	}
	pristine, src, err := kbuild.PristineTree(ctx, spec.Source, o.CacheDir)
	if err != nil {
		return nil, err
	}
	repo := filepath.Join(dir, repoName)
	edit := filepath.Join(dir, "edit")
	os.RemoveAll(repo)
	os.RemoveAll(edit)
	if err := os.MkdirAll(repo, 0o755); err != nil {
		return nil, fault.Infraf("CI history: %v", err)
	}
	r := vcstest.Open(tb, repo)
	r.Git("init", "-q", "--bare", "-b", "main")

	// The import: the pristine tree as the kernel builds see it, read in place (never
	// copied or written), everything in it (-f: the tarball's files, whatever .gitignore says).
	in := vcstest.Open(tb, pristine)
	env := []string{"GIT_DIR=" + repo, "GIT_WORK_TREE=" + pristine, "GIT_INDEX_FILE=" + filepath.Join(dir, "import.index")}
	defer os.Remove(filepath.Join(dir, "import.index"))
	in.GitEnv(env, "-c", "core.looseCompression=1", "add", "-A", "-f", ".")
	tree := in.GitEnv(env, "write-tree")
	subject := "import " + spec.Source.Debian
	if v := src.Info["package_version"]; v != "" {
		subject += " " + v
	}
	base := r.Git("commit-tree", tree, "-m", subject)
	r.Tick()
	r.Git("update-ref", "refs/heads/main", base)
	r.Git("tag", "ci-history-base", base)

	// The commits, in a sparse worktree holding only the folders the recipe edits.
	r.Git("worktree", "add", "-q", "--no-checkout", edit, "main")
	w := vcstest.Open(tb, edit)
	w.Git("sparse-checkout", "set", "--no-cone", "/Documentation/reprolab-ci-history.rst", "/fs/proc/")
	w.Git("read-tree", "--reset", "-u", "HEAD")
	h := &History{Recipe: Recipe, Repo: repo, Base: base, Title: Title,
		Reproducer: reproducer, KernelSpec: kernelSpec, Source: src.Info}
	for _, s := range recipe {
		s.edit(w)
		c := w.Commit(s.subject)
		h.Commits = append(h.Commits, Entry{Hash: c, Subject: s.subject, Kind: s.kind})
		switch s.kind {
		case "bad":
			h.Bad = c
		case "fix":
			h.Fix = c
			h.LastBad = h.Commits[len(h.Commits)-2].Hash
		}
	}
	h.Head = h.Commits[len(h.Commits)-1].Hash
	r.Git("tag", "ci-history-bad", h.Bad)
	r.Git("tag", "ci-history-fix", h.Fix)

	// The candidate patches, against the file as Bad..LastBad have it.
	fix := w.Git("diff", "--full-index", h.LastBad, h.Fix, "--", loadavg)
	h.FixPatch = filepath.Join(dir, "fix.patch")
	h.NoopPatch = filepath.Join(dir, "noop.patch")
	w.Git("checkout", "-q", "--detach", h.LastBad)
	w.Edit(loadavg, "static int __init proc_loadavg_init(void)\n", "/* reprolab CI history: a no-op candidate, a comment only. */\nstatic int __init proc_loadavg_init(void)\n")
	noop := w.Git("diff", "--", loadavg)
	w.Git("checkout", "-q", "--", loadavg)
	r.Git("worktree", "remove", "--force", edit)
	for path, p := range map[string]struct{ subject, diff string }{
		h.FixPatch:  {"proc: loadavg: do not BUG() on a random draw", fix},
		h.NoopPatch: {"proc: loadavg: a comment (changes nothing)", noop},
	} {
		mail := fmt.Sprintf("From: Repro Lab <lab@reprolab.invalid>\nSubject: [PATCH] %s\n\n%s\n---\n%s\n", p.subject, p.subject+".", p.diff)
		if err := atomicfile.Write(path, []byte(mail), 0o644); err != nil {
			return nil, fault.Infraf("CI history: %v", err)
		}
	}
	if err := write(own, h); err != nil {
		return nil, err
	}
	return h, write(jsonPath, h)
}

func write(path string, h *History) error {
	data, _ := json.MarshalIndent(h, "", "  ")
	if err := atomicfile.Write(path, append(data, '\n'), 0o644); err != nil {
		return fault.Infraf("CI history: %v", err)
	}
	return nil
}
