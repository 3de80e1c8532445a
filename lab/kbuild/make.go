package kbuild

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/reprolab/reprolab/lab/fault"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

// BuildError is a failed make: the first compiler errors and the failing
// target, not the whole log.
type BuildError struct {
	Target string   // what make was building when it failed, e.g. mm/page-writeback.o
	Errors []string // first error lines with a little context
	Log    string   // full build log
	// Edited is true when the failure is in a file our patches or probes
	// edited: then it is the input's fault.
	Edited bool
}

func (e *BuildError) Error() string {
	s := "kernel build failed"
	if e.Target != "" {
		s += " at " + e.Target
	}
	if e.Edited {
		s += " (a file edited by the spec's patches or probes)"
	}
	return s + ":\n  " + strings.Join(e.Errors, "\n  ") + "\nfull log: " + e.Log
}

// FaultKind: a failure in a file the spec's patches or probes edited is the input's
// fault; any other is the build's (a lab/compiler problem, never evidence).
func (e *BuildError) FaultKind() fault.Kind {
	if e.Edited {
		return fault.Input
	}
	return fault.Infra
}

var (
	ccRe      = regexp.MustCompile(`^\s+CC( \[M\])?\s+\S`)
	errLineRe = regexp.MustCompile(`(: (fatal )?error: |: undefined reference to |multiple definition of |^ERROR: |Error: )`)
	failRe    = regexp.MustCompile(`^make\[\d+\]: \*\*\* \[[^\]]*?:\d+: ([^\]]+)\] Error`)
	phaseRe   = regexp.MustCompile(`^\s+(LD|KSYM|SYSMAP|BUILD|OBJCOPY|GZIP|LZMA|XZKERN)\s+(\S+)`)
)

// make runs the image build and returns the number of C files compiled.
func (b *builder) make(ctx context.Context, src, obj, logPath string, edited []string) (int, error) {
	counts := filepath.Join(b.spec.CacheDir, "kbuild", "cc-counts.json")
	ck := hash(append([]string{b.version.String(), b.spec.Arch, b.spec.Base}, b.optionLines()...)...)[:16]
	known := map[string]int{}
	if data, err := os.ReadFile(counts); err == nil {
		json.Unmarshal(data, &known)
	}
	// Percent needs the number of files a full build compiles: the last full
	// build of this config, else of any config of this kernel and arch.
	approx := fmt.Sprintf("approx:%d.%d:%s", b.version.Major, b.version.Minor, b.spec.Arch)
	b.prog.total = known[ck]
	if b.prog.total == 0 {
		b.prog.total = known[approx]
	}

	logf, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	args := b.makeArgs(src, obj, fmt.Sprintf("-j%d", b.spec.Jobs), b.ai.target)
	fmt.Fprintf(logf, "# make %s\n", strings.Join(args, " "))
	cmd := exec.Command("make", args...)
	cmd.Env = b.makeEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting make: %w", err)
	}
	// Cancel kills make's whole process group: no orphaned cc1 keeps a
	// shared 2-core machine busy.
	stop := context.AfterFunc(ctx, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer stop()
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait(); pw.Close() }()

	compiled := 0
	var errs []string
	var target string
	var recent []string
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		fmt.Fprintln(logf, l)
		switch {
		case ccRe.MatchString(l):
			// Every relink recompiles the version stamp (init/version.o up
			// to 6.0, init/version-timestamp.o from 6.1) and the boot-image
			// wrapper (arch/x86/boot/version.o, compressed/misc.o, which
			// include offsets of the new vmlinux): they follow from the link,
			// not from our inputs, so they are not counted.
			if f := strings.Fields(l); linkStage(f[len(f)-1]) {
				break
			}
			compiled++
			b.prog.compiled(compiled)
		case phaseRe.MatchString(l):
			m := phaseRe.FindStringSubmatch(l)
			if m[2] == "vmlinux" || m[1] == "KSYM" || m[1] == "SYSMAP" {
				b.prog.phase("link", "vmlinux")
			} else if m[1] == "BUILD" || m[1] == "OBJCOPY" && strings.Contains(m[2], "boot/Image") {
				b.prog.phase("image", m[2])
			}
		}
		if errLineRe.MatchString(l) && len(errs) < 12 {
			if len(errs) == 0 && len(recent) > 0 {
				errs = append(errs, recent[len(recent)-1])
			}
			errs = append(errs, l)
		}
		if m := failRe.FindStringSubmatch(l); m != nil && target == "" {
			target = m[1]
		}
		recent = append(recent, l)
		if len(recent) > 3 {
			recent = recent[1:]
		}
	}
	err = <-waitErr
	if ctx.Err() != nil {
		return compiled, ctx.Err()
	}
	if err != nil {
		if len(errs) == 0 {
			errs = recent
		}
		be := &BuildError{Target: target, Errors: errs, Log: logPath}
		for _, e := range append([]string{target}, errs...) {
			for _, f := range edited {
				stem := strings.TrimSuffix(f, filepath.Ext(f))
				if strings.Contains(e, f) || (target != "" && strings.TrimSuffix(target, ".o") == stem) {
					be.Edited = true
				}
			}
		}
		return compiled, be
	}
	if compiled > 0 && known[ck] < compiled {
		known[ck] = compiled
		if compiled > known[approx]/2 {
			known[approx] = compiled
		}
		if data, err := json.Marshal(known); err == nil {
			writeFile(counts, data)
		}
	}
	return compiled, nil
}

func (b *builder) optionLines() []string {
	var out []string
	for _, o := range b.options {
		out = append(out, o.ConfigLine())
	}
	return out
}

// linkStage reports whether an object is rebuilt by every relink.
func linkStage(obj string) bool {
	if strings.HasPrefix(obj, "init/version") {
		return true
	}
	_, rest, ok := strings.Cut(obj, "/")
	if !strings.HasPrefix(obj, "arch/") || !ok {
		return false
	}
	_, rest, _ = strings.Cut(rest, "/")
	return strings.HasPrefix(rest, "boot/")
}
