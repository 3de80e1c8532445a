package report

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/reprolab/reprolab/lab/cache"

	"github.com/hashicorp/go-multierror"
)

// Symbolizer resolves frames to file:line against a vmlinux with debug info, with one
// long-lived llvm-symbolizer process (addr2line when llvm-symbolizer is missing), so a
// report of 50 frames costs 50 pipe round trips, not 50 process starts.
//
// Addresses: a frame printed as func+off/size is resolved through vmlinux's symbol
// table (the symbol named func whose size is size, which also picks the right one of
// several static functions with the same name), so KASLR does not matter for those.
// Raw PCs (4.x "[<ffffffff...>]" frames without a symbol) are used as printed, which is
// only right for a guest booted with nokaslr, as reprolab boots them. Every frame but
// the faulting one holds a return address; PC-1 is looked up so a call at the end of an
// inlined block reports the call's line, not the next statement's.
//
// Frames in modules ("[ext4]") resolve only against modules given to AddModule, by
// func+off (their load address is not in the console output).
type Symbolizer struct {
	vmlinux, arch string
	syms          map[string][]elf.Symbol
	mods          map[string]*module

	mu   sync.Mutex
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	llvm bool
}

// NewSymbolizer starts a symbolizer for vmlinux built for arch ("x86_64"/"amd64" or
// "arm64"/"aarch64"). vmlinux must have a symbol table; file:line needs DWARF.
func NewSymbolizer(vmlinux, arch string) (*Symbolizer, error) {
	switch arch {
	case "x86_64", "amd64", "arm64", "aarch64":
	default:
		return nil, fmt.Errorf("report: symbolizer arch %q: want x86_64 or arm64", arch)
	}
	f, err := elf.Open(vmlinux)
	if err != nil {
		return nil, fmt.Errorf("report: symbolizer: %s is not a readable ELF vmlinux (%v); pass the vmlinux with debug info from the kernel build (or Debian's linux-image-*-dbg)", vmlinux, err)
	}
	defer f.Close()
	if want := map[string]elf.Machine{"x86_64": elf.EM_X86_64, "amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "aarch64": elf.EM_AARCH64}[arch]; f.Machine != want {
		return nil, fmt.Errorf("report: symbolizer: %s is %v, not %s", vmlinux, f.Machine, arch)
	}
	if f.Section(".debug_info") == nil {
		return nil, fmt.Errorf("report: symbolizer: %s has no DWARF (.debug_info); build with CONFIG_DEBUG_INFO or use linux-image-*-dbg", vmlinux)
	}
	list, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("report: symbolizer: %s: symbol table: %v", vmlinux, err)
	}
	s := &Symbolizer{vmlinux: vmlinux, arch: arch, syms: make(map[string][]elf.Symbol)}
	for _, sym := range list {
		if elf.ST_TYPE(sym.Info) == elf.STT_FUNC && sym.Value != 0 {
			s.syms[sym.Name] = append(s.syms[sym.Name], sym)
		}
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Symbolizer) start() error {
	if p, err := exec.LookPath("llvm-symbolizer"); err == nil {
		// No --obj: every query names its object ("path" 0xaddr), so vmlinux and
		// modules share one process.
		s.cmd = exec.Command(p, "--inlining", "--functions=linkage", "--output-style=LLVM")
		s.llvm = true
	} else {
		a2l := "addr2line"
		if s.arch == "arm64" || s.arch == "aarch64" {
			a2l = "aarch64-linux-gnu-addr2line"
		}
		p, err := exec.LookPath(a2l)
		if err != nil {
			return fmt.Errorf("report: symbolizer: neither llvm-symbolizer nor %s found; apt-get install llvm (or binutils)", a2l)
		}
		s.cmd = exec.Command(p, "-f", "-i", "-e", s.vmlinux)
	}
	in, err := s.cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	s.cmd.Stderr = io.Discard
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("report: symbolizer: start %s: %v", s.cmd.Path, err)
	}
	s.in, s.out = in, bufio.NewReaderSize(out, 64<<10)
	return nil
}

// Close stops the symbolizer process.
func (s *Symbolizer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	var errs *multierror.Error
	if err := s.in.Close(); err != nil {
		errs = multierror.Append(errs, err)
	}
	if err := s.cmd.Wait(); err != nil {
		errs = multierror.Append(errs, fmt.Errorf("report: symbolizer %s: %v", s.cmd.Path, err))
	}
	s.cmd = nil
	return errs.ErrorOrNil()
}

// location is one line of a (possibly inlined) lookup result.
type location struct {
	fn, file string
	line     int
}

// lookup returns the inline chain for pc, innermost first; the last entry is the
// function that pc's machine code belongs to.
func (s *Symbolizer) lookup(obj string, pc uint64) ([]location, error) {
	if s.cmd == nil {
		return nil, errors.New("report: symbolizer is closed")
	}
	if s.llvm {
		if _, err := fmt.Fprintf(s.in, "%q 0x%x\n", obj, pc); err != nil {
			return nil, fmt.Errorf("report: symbolizer: %v", err)
		}
		// LLVM style: pairs of "function" / "file:line:col" lines, then an empty line.
		var locs []location
		for {
			fn, err := s.out.ReadString('\n')
			if err != nil {
				return nil, fmt.Errorf("report: symbolizer died: %v", err)
			}
			fn = strings.TrimSpace(fn)
			if fn == "" {
				if len(locs) == 0 {
					continue // a stray empty line before the answer
				}
				return locs, nil
			}
			fl, err := s.out.ReadString('\n')
			if err != nil {
				return nil, fmt.Errorf("report: symbolizer died: %v", err)
			}
			locs = append(locs, parseFileLine(fn, strings.TrimSpace(fl)))
		}
	}
	if obj != s.vmlinux {
		return nil, errNoModules
	}
	// addr2line -f -i prints pairs with no terminator: follow each address by 0,
	// whose answer "??" / "??:0" (or "??:?") marks the end.
	if _, err := fmt.Fprintf(s.in, "0x%x\n0\n", pc); err != nil {
		return nil, fmt.Errorf("report: symbolizer: %v", err)
	}
	var locs []location
	for {
		fn, err1 := s.out.ReadString('\n')
		fl, err2 := s.out.ReadString('\n')
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("report: symbolizer died: %v", errors.Join(err1, err2))
		}
		fn, fl = strings.TrimSpace(fn), strings.TrimSpace(fl)
		if fn == "??" && strings.HasPrefix(fl, "??:") && len(locs) > 0 {
			return locs, nil
		}
		locs = append(locs, parseFileLine(fn, fl))
	}
}

func parseFileLine(fn, fl string) location {
	loc := location{fn: fn}
	if fn == "??" {
		loc.fn = ""
	}
	// file:line[:col]; "??:0" when unknown.
	parts := strings.Split(fl, ":")
	if len(parts) >= 2 {
		nums := 1
		if len(parts) >= 3 {
			if _, err := strconv.Atoi(parts[len(parts)-1]); err == nil {
				if _, err := strconv.Atoi(parts[len(parts)-2]); err == nil {
					nums = 2 // file:line:col
				}
			}
		}
		loc.file = strings.Join(parts[:len(parts)-nums], ":")
		loc.line, _ = strconv.Atoi(parts[len(parts)-nums])
	}
	if loc.file == "??" {
		loc.file = ""
	}
	return loc
}

var errNoModules = errors.New("report: module frames need llvm-symbolizer")

// AddModule makes frames of module name ("dm_crypt", as the console prints it) resolve
// against path, a .ko with debug info. Module addresses are section offsets (the load
// address is not in the console), so only func+off frames are resolved.
func (s *Symbolizer) AddModule(name, path string) error {
	if !s.llvm {
		return fmt.Errorf("report: symbolizer: module %s: %w", name, errNoModules)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("report: symbolizer: module %s: %s is not a readable ELF object: %v", name, path, err)
	}
	defer f.Close()
	list, err := f.Symbols()
	if err != nil {
		return fmt.Errorf("report: symbolizer: module %s: %s: symbol table: %v", name, path, err)
	}
	m := &module{path: path, syms: make(map[string][]elf.Symbol)}
	for _, sym := range list {
		if elf.ST_TYPE(sym.Info) == elf.STT_FUNC {
			m.syms[sym.Name] = append(m.syms[sym.Name], sym)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mods == nil {
		s.mods = make(map[string]*module)
	}
	s.mods[strings.ReplaceAll(name, "-", "_")] = m
	return nil
}

type module struct {
	path string
	syms map[string][]elf.Symbol
}

// objOf returns the object file and address to look up for f, or "" when f cannot be
// placed.
func (s *Symbolizer) objOf(f *Frame) (string, uint64, bool) {
	if f.Module != "" {
		m := s.mods[f.Module]
		if m == nil || f.Func == "" {
			return "", 0, false
		}
		if sym := fit(m.syms[f.Func], f); sym != nil {
			return m.path, sym.Value + f.Off, true
		}
		return "", 0, false
	}
	pc := s.pcOf(f)
	return s.vmlinux, pc, pc != 0
}

// fit picks the same-named symbol whose ELF size fits under the printed size most
// tightly (kallsyms sizes run to the next symbol, alignment padding included).
func fit(cands []elf.Symbol, f *Frame) *elf.Symbol {
	var best *elf.Symbol
	for i, sym := range cands {
		if f.Size != 0 && (sym.Size > f.Size || f.Off >= f.Size) {
			continue
		}
		if best == nil || sym.Size > best.Size {
			best = &cands[i]
		}
	}
	return best
}

// pcOf returns the vmlinux address to look up for f, or 0 when f cannot be placed.
func (s *Symbolizer) pcOf(f *Frame) uint64 {
	if f.Func != "" {
		best := fit(s.syms[f.Func], f)
		if best != nil {
			return best.Value + f.Off
		}
		if len(s.syms[f.Func]) > 0 {
			return 0 // same name, wrong size: another kernel than this vmlinux
		}
	}
	return f.PC
}

// Symbolize fills File and Line of r's frames and inserts the functions inlined at each
// one before it (Inlined set). The title, signature and guilty frame do not change:
// they never depend on whether a vmlinux was at hand.
func (s *Symbolizer) Symbolize(r *Report) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Frame
	guilty := -1
	var errs *multierror.Error
	for i, f := range r.Frames {
		if f.Inlined {
			continue // already symbolized once
		}
		obj, pc, ok := s.objOf(&f)
		if !ok {
			if i == r.Guilty {
				guilty = len(out)
			}
			out = append(out, f)
			continue
		}
		look := pc
		if (i > 0 || !r.faultSite) && look > 0 {
			look = pc - 1 // a return address: the call is the instruction before it
		}
		locs, err := s.lookup(obj, look)
		if err != nil {
			errs = multierror.Append(errs, err)
			break
		}
		for _, l := range locs[:len(locs)-1] {
			out = append(out, Frame{Func: l.fn, File: l.file, Line: l.line, Inlined: true, Module: f.Module, Unreliable: f.Unreliable})
		}
		last := locs[len(locs)-1]
		f.File, f.Line = last.file, last.line
		if f.PC == 0 && obj == s.vmlinux {
			f.PC = pc
		}
		if i == r.Guilty {
			guilty = len(out)
		}
		out = append(out, f)
	}
	if errs == nil {
		r.Frames, r.Guilty = out, guilty
	}
	return errs.ErrorOrNil()
}

// DefaultVmlinux returns where reprolab's cache keeps Debian's debug vmlinux for a
// kernel release (see images/debian-kernels.sh and testdata/gen), if it exists.
func DefaultVmlinux(release string) string {
	p := cacheDir() + "/debian/dbg/usr/lib/debug/boot/vmlinux-" + release
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// cacheDir is reprolab's cache.
func cacheDir() string { return cache.Dir() }
