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
// Frames in modules ("[ext4]") are left unresolved: their load address is not in the
// console output.
type Symbolizer struct {
	vmlinux, arch string
	syms          map[string][]elf.Symbol

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
		s.cmd = exec.Command(p, "--obj="+s.vmlinux, "--inlining", "--functions=linkage", "--output-style=LLVM")
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
func (s *Symbolizer) lookup(pc uint64) ([]location, error) {
	if s.cmd == nil {
		return nil, errors.New("report: symbolizer is closed")
	}
	if s.llvm {
		if _, err := fmt.Fprintf(s.in, "0x%x\n", pc); err != nil {
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

// pcOf returns the address to look up for f, or 0 when f cannot be placed in vmlinux.
func (s *Symbolizer) pcOf(f *Frame) uint64 {
	if f.Module != "" {
		return 0
	}
	if f.Func != "" {
		cands := s.syms[f.Func]
		for _, sym := range cands {
			if f.Size == 0 || sym.Size == f.Size {
				return sym.Value + f.Off
			}
		}
		if len(cands) > 0 {
			return 0 // a same-named symbol of another size: not this kernel
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
		pc := s.pcOf(&f)
		if pc == 0 {
			if i == r.Guilty {
				guilty = len(out)
			}
			out = append(out, f)
			continue
		}
		look := pc
		if i > 0 {
			look = pc - 1 // a return address: the call is the instruction before it
		}
		locs, err := s.lookup(look)
		if err != nil {
			errs = multierror.Append(errs, err)
			break
		}
		for _, l := range locs[:len(locs)-1] {
			out = append(out, Frame{Func: l.fn, File: l.file, Line: l.line, Inlined: true, PC: pc, Module: f.Module})
		}
		last := locs[len(locs)-1]
		f.File, f.Line = last.file, last.line
		if f.PC == 0 {
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
	cache := os.Getenv("REPROLAB_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = home + "/.cache/reprolab"
	}
	p := cache + "/debian/dbg/usr/lib/debug/boot/vmlinux-" + release
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
