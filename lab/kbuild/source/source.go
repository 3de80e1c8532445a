// Package source turns a description of where a kernel's source lives (a git
// tree and ref, a local directory, a tarball on disk or at a URL, Debian's
// linux-source package) into a stable identity and a pristine copy in a cache.
//
// The identity is what the build cache keys on, so it must change whenever
// the source can: a git ref is resolved to its commit, a tarball is hashed,
// a local directory is summarised by every file's path, size, mode and mtime.
// The user's tree is never written to: git sources are exported with
// `git archive`, directories are copied.
package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/reprolab/reprolab/lab/fault"
	"github.com/reprolab/reprolab/lab/vcs"
)

// Source says where a kernel tree comes from. Exactly one of Git, Dir,
// Tarball, URL, KernelOrg or Debian is set.
type Source struct {
	Git     string   `yaml:"git,omitempty" json:"git,omitempty"`         // path of a local git repository
	Ref     string   `yaml:"ref,omitempty" json:"ref,omitempty"`         // commit, tag or branch (with Git)
	Exclude []string `yaml:"exclude,omitempty" json:"exclude,omitempty"` // paths left out of `git archive` (with Git)

	Dir string `yaml:"dir,omitempty" json:"dir,omitempty"` // a local, unpacked tree

	Tarball string `yaml:"tarball,omitempty" json:"tarball,omitempty"` // a local .tar.{xz,gz,bz2}
	URL     string `yaml:"url,omitempty" json:"url,omitempty"`         // http(s):// or file:// tarball URL
	// KernelOrg is a release such as "4.11"; the URL follows kernel.org's
	// layout (v4.x/linux-4.11.tar.xz) under Mirror.
	KernelOrg string `yaml:"kernel_org,omitempty" json:"kernel_org,omitempty"`
	Mirror    string `yaml:"mirror,omitempty" json:"mirror,omitempty"`
	SHA256    string `yaml:"sha256,omitempty" json:"sha256,omitempty"` // required for URL; checked for Tarball when set

	Debian string `yaml:"debian,omitempty" json:"debian,omitempty"` // e.g. "linux-source-6.1"
}

// DefaultMirror is where KernelOrg releases are looked up.
const DefaultMirror = "https://cdn.kernel.org/pub/linux/kernel"

// pinnedSHA256 are checksums of kernel.org release tarballs as pinned by
// distribution build recipes (Yocto, nixpkgs, Arch); none is made up here.
var pinnedSHA256 = map[string]string{
	"v4.x/linux-4.11.tar.xz": "b67ecafd0a42b3383bf4d82f0850cbff92a7e72a215a6d02f42ddbafcf42a7d6",
	"v4.x/linux-4.13.tar.xz": "2db3d6066c3ad93eb25b973a3d2951e022a7e975ee2fa7cbe5bddf84d9a49a2c",
}

// Error is a source the user described wrongly (missing path, unknown ref,
// wrong checksum). It is bad input, not an infrastructure failure.
type Error struct{ Msg string }

func (e *Error) Error() string         { return e.Msg }
func (e *Error) FaultKind() fault.Kind { return fault.Input }

func bad(format string, a ...any) error { return &Error{Msg: fmt.Sprintf(format, a...)} }

// Resolved is a source whose identity is known.
type Resolved struct {
	Source Source
	Kind   string // git, dir, tarball, url, debian
	// ID changes whenever the content can.
	ID string
	// Info is recorded in build metadata (commit, package version, sha256...).
	Info map[string]string

	tarball  string // local tarball to unpack (tarball, url, debian)
	cacheDir string
	git      *vcs.Git // the repository (git)
}

// Resolve checks the description and computes the identity. Downloads (URL,
// KernelOrg) land in cacheDir/downloads, keyed by checksum.
func Resolve(ctx context.Context, s Source, cacheDir string) (*Resolved, error) {
	n := 0
	for _, v := range []string{s.Git, s.Dir, s.Tarball, s.URL, s.KernelOrg, s.Debian} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return nil, bad("kernel source: set exactly one of git, dir, tarball, url, kernel_org, debian (got %d)", n)
	}
	if (s.Ref != "" || len(s.Exclude) > 0) && s.Git == "" {
		return nil, bad("kernel source: ref and exclude only go with git")
	}
	r := &Resolved{Source: s, Info: map[string]string{}, cacheDir: cacheDir}
	switch {
	case s.Git != "":
		return r, r.resolveGit(ctx)
	case s.Dir != "":
		return r, r.resolveDir()
	case s.Tarball != "":
		r.Kind, r.tarball = "tarball", s.Tarball
		return r, r.hashTarball(s.SHA256)
	case s.Debian != "":
		return r, r.resolveDebian(ctx)
	default:
		return r, r.resolveURL(ctx, cacheDir)
	}
}

func (r *Resolved) resolveGit(ctx context.Context) error {
	s := r.Source
	r.Kind = "git"
	if s.Ref == "" {
		return bad("kernel source git %s: ref is required (a commit, tag or branch)", s.Git)
	}
	g, err := vcs.Open(ctx, s.Git)
	if err != nil {
		return bad("kernel source %v", err)
	}
	commit, err := g.Resolve(ctx, s.Ref)
	if err != nil {
		if !fault.IsInput(err) {
			return err
		}
		return bad("kernel source %v", err)
	}
	r.git = g
	r.Info["commit"], r.Info["ref"], r.Info["repo"] = commit, s.Ref, s.Git
	r.ID = "git:" + commit
	if len(s.Exclude) > 0 {
		r.ID += ":exclude=" + strings.Join(s.Exclude, ",")
		r.Info["exclude"] = strings.Join(s.Exclude, ",")
	}
	return nil
}

func (r *Resolved) resolveDir() error {
	r.Kind = "dir"
	dir, err := filepath.Abs(r.Source.Dir)
	if err != nil {
		return bad("kernel source dir %s: %v", r.Source.Dir, err)
	}
	if err := checkTree(dir); err != nil {
		return err
	}
	// Content hashing a 1 GiB tree on every build would cost more than it
	// saves; path+size+mode+mtime changes whenever an editor or git touches a
	// file, which is what matters for a cache key.
	h := sha256.New()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s\x00%d\x00%o\x00%d\n", rel, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return bad("kernel source dir %s: %v", dir, err)
	}
	r.Source.Dir = dir
	r.Info["dir"] = dir
	r.ID = "dir:" + dir + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	return nil
}

func (r *Resolved) hashTarball(want string) error {
	got, err := r.sha256()
	if err != nil {
		return err
	}
	if want != "" && !strings.EqualFold(want, got) {
		return bad("kernel source tarball %s: sha256 is %s, the spec says %s (wrong file, or a truncated download)", r.tarball, got, want)
	}
	r.Info["sha256"], r.Info["tarball"] = got, r.tarball
	r.ID = "tarball:sha256:" + got
	return nil
}

func (r *Resolved) resolveDebian(ctx context.Context) error {
	r.Kind = "debian"
	pkg := r.Source.Debian
	if !regexp.MustCompile(`^linux-source-[0-9.]+$`).MatchString(pkg) {
		return bad("kernel source debian %q: want a package name like linux-source-6.1", pkg)
	}
	r.tarball = "/usr/src/" + pkg + ".tar.xz"
	if _, err := os.Stat(r.tarball); err != nil {
		return bad("kernel source debian %s: %s is missing; install it with `apt-get install %s`", pkg, r.tarball, pkg)
	}
	if v, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${Version}", pkg).Output(); err == nil {
		r.Info["package_version"] = string(v)
	}
	if err := r.hashTarball(""); err != nil {
		return err
	}
	r.Info["package"] = pkg
	r.ID = "debian:" + pkg + ":" + r.Info["sha256"]
	return nil
}

// KernelOrgPath is the path of a release tarball in kernel.org's layout.
func KernelOrgPath(release string) (string, error) {
	if !regexp.MustCompile(`^[1-9][0-9]*\.[0-9]+(\.[0-9]+)?$`).MatchString(release) {
		return "", bad("kernel_org %q: want a release number like 4.11 or 4.13.9", release)
	}
	major, _, _ := strings.Cut(release, ".")
	return fmt.Sprintf("v%s.x/linux-%s.tar.xz", major, release), nil
}

// Check finds every mistake Resolve would, without downloading anything or writing to the
// cache: a local source is resolved (git ref, tree, tarball checksum), a download is checked
// for its URL and a well-formed sha256. A matrix runs it on every kernel before it opens
// its database, so a typo fails in seconds and leaves nothing behind.
func Check(ctx context.Context, s Source) error {
	if s.URL == "" && s.KernelOrg == "" {
		_, err := Resolve(ctx, s, "")
		return err
	}
	n := 0
	for _, v := range []string{s.Git, s.Dir, s.Tarball, s.URL, s.KernelOrg, s.Debian} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return bad("kernel source: set exactly one of git, dir, tarball, url, kernel_org, debian (got %d)", n)
	}
	if s.Ref != "" || len(s.Exclude) > 0 {
		return bad("kernel source: ref and exclude only go with git")
	}
	r := &Resolved{Source: s, Info: map[string]string{}}
	_, _, err := r.urlTarget()
	return err
}

// urlTarget is the URL and checksum of a url or kernel_org source, checked.
func (r *Resolved) urlTarget() (*url.URL, string, error) {
	s := r.Source
	u, want := s.URL, s.SHA256
	if s.KernelOrg != "" {
		p, err := KernelOrgPath(s.KernelOrg)
		if err != nil {
			return nil, "", err
		}
		m := s.Mirror
		if m == "" {
			m = DefaultMirror
		}
		u = strings.TrimRight(m, "/") + "/" + p
		if want == "" {
			want = pinnedSHA256[p]
		}
		r.Info["kernel_org"] = s.KernelOrg
	}
	if want == "" {
		return nil, "", bad("kernel source url %s: sha256 is required for a download (copy it from the release's sha256sums.asc)", u)
	}
	if !regexp.MustCompile(`^[0-9a-fA-F]{64}$`).MatchString(want) {
		return nil, "", bad("kernel source url %s: sha256 %q is not 64 hex digits", u, want)
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https" && pu.Scheme != "file") {
		return nil, "", bad("kernel source url %q: want an http://, https:// or file:// URL", u)
	}
	return pu, strings.ToLower(want), nil
}

func (r *Resolved) resolveURL(ctx context.Context, cacheDir string) error {
	r.Kind = "url"
	pu, want, err := r.urlTarget()
	if err != nil {
		return err
	}
	u := pu.String()
	dst := filepath.Join(cacheDir, "downloads", want+"-"+path.Base(pu.Path))
	r.tarball = dst
	r.Info["url"] = u
	if _, err := os.Stat(dst); err == nil {
		if err := r.hashTarball(want); err == nil {
			return nil
		}
		os.Remove(dst) // a corrupt cache entry is fetched again
	}
	if err := download(ctx, pu, dst); err != nil {
		return err
	}
	if err := r.hashTarball(want); err != nil {
		os.Remove(dst)
		return bad("kernel source url %s: downloaded file has the wrong sha256: %v", u, err)
	}
	return nil
}

func download(ctx context.Context, u *url.URL, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	var body io.ReadCloser
	if u.Scheme == "file" {
		f, err := os.Open(u.Path)
		if err != nil {
			return bad("kernel source url %s: %v", u, err)
		}
		body = f
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return bad("kernel source url %s: %v", u, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("downloading %s: %w", u, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return bad("kernel source url %s: HTTP %s", u, resp.Status)
		}
		body = resp.Body
	}
	defer body.Close()
	tmp := dst + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("downloading %s: %w", u, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// Extract writes a pristine copy of the tree to dest, which must not exist.
// It is created atomically: a half-written tree never sits at dest.
func (r *Resolved) Extract(ctx context.Context, dest string) error {
	tmp := dest + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	var err error
	switch r.Kind {
	case "git":
		err = r.extractGit(ctx, tmp)
	case "dir":
		err = pipe(ctx, exec.Command("tar", "-C", r.Source.Dir, "--exclude=./.git", "-cf", "-", "."), exec.Command("tar", "-C", tmp, "-xf", "-"))
	default:
		err = run(ctx, exec.Command("tar", "-C", tmp, "--strip-components=1", "-xf", r.tarball))
	}
	if err == nil {
		err = checkTree(tmp)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return os.Rename(tmp, dest)
}

func (r *Resolved) extractGit(ctx context.Context, dest string) error {
	if err := r.git.Archive(ctx, r.Info["commit"], dest, r.Source.Exclude); err != nil {
		if fault.IsInput(err) {
			return bad("kernel source %v", err)
		}
		return err
	}
	return nil
}

// Git is the repository of a git source (nil for other kinds).
func (r *Resolved) Git() *vcs.Git { return r.git }

func checkTree(dir string) error {
	for _, f := range []string{"Makefile", "Kconfig", "scripts/kconfig"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return bad("%s is not a Linux source tree (no %s)", dir, f)
		}
	}
	return nil
}

func run(ctx context.Context, c *exec.Cmd) error {
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(c.Args, " "), err, lastLines(stderr.String(), 5))
	}
	return ctx.Err()
}

// pipe runs a | b and reports the first failure with its stderr.
func pipe(ctx context.Context, a, b *exec.Cmd) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	var ea, eb bytes.Buffer
	a.Stdout, a.Stderr = pw, &ea
	b.Stdin, b.Stderr = pr, &eb
	if err := a.Start(); err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	if err := b.Start(); err != nil {
		pr.Close()
		pw.Close()
		a.Process.Kill()
		a.Wait()
		return err
	}
	pw.Close()
	pr.Close()
	stop := context.AfterFunc(ctx, func() { a.Process.Kill(); b.Process.Kill() })
	defer stop()
	errA, errB := a.Wait(), b.Wait()
	switch {
	case errA != nil:
		return fmt.Errorf("%s: %w: %s", a.Args[0]+" "+a.Args[1], errA, lastLines(ea.String(), 5))
	case errB != nil:
		return fmt.Errorf("%s: %w: %s", b.Args[0], errB, lastLines(eb.String(), 5))
	}
	return ctx.Err()
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// sha256 hashes the tarball, remembering the result by path, size and mtime
// in the cache: a cache hit on a 140 MB linux-source tarball should not
// cost a second of hashing.
func (r *Resolved) sha256() (string, error) {
	fi, err := os.Stat(r.tarball)
	if err != nil {
		return "", bad("kernel source tarball: %v", err)
	}
	key := fmt.Sprintf("%s|%d|%d", r.tarball, fi.Size(), fi.ModTime().UnixNano())
	memo := map[string]string{}
	memoPath := ""
	if r.cacheDir != "" {
		memoPath = filepath.Join(r.cacheDir, "downloads", "sha256-memo.json")
		if data, err := os.ReadFile(memoPath); err == nil {
			json.Unmarshal(data, &memo)
		}
		if h, ok := memo[key]; ok {
			return h, nil
		}
	}
	f, err := os.Open(r.tarball)
	if err != nil {
		return "", bad("kernel source tarball: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", r.tarball, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if memoPath != "" {
		memo[key] = sum
		if data, err := json.Marshal(memo); err == nil && os.MkdirAll(filepath.Dir(memoPath), 0o755) == nil {
			tmp := memoPath + fmt.Sprintf(".%d", os.Getpid())
			if os.WriteFile(tmp, data, 0o644) == nil {
				os.Rename(tmp, memoPath)
			}
		}
	}
	return sum, nil
}
