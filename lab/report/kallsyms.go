package report

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Symbols maps kernel text addresses to function names from a kallsyms listing
// (/proc/kallsyms of the running guest, or a System.map): enough to name the frames of a
// register dump when no vmlinux with debug info exists, as for Debian's arm64 kernel.
type Symbols struct {
	addrs []uint64
	names []string
	mods  []string
}

// ParseKallsyms reads "ffff800008010000 T _text" lines (and module symbols with a
// trailing "[module]"), keeping text symbols. Addresses must be real: a listing read
// without privilege shows zeros, which is an error.
func ParseKallsyms(r io.Reader) (*Symbols, error) {
	type sym struct {
		addr      uint64
		name, mod string
	}
	var syms []sym
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	zero := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || len(f[1]) != 1 || !strings.ContainsAny(f[1], "tTwW") {
			continue
		}
		a, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			continue
		}
		if a == 0 {
			zero++
			continue
		}
		s := sym{addr: a, name: f[2]}
		if len(f) > 3 {
			s.mod = strings.Trim(f[3], "[]")
		}
		syms = append(syms, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(syms) == 0 {
		if zero > 0 {
			return nil, fmt.Errorf("kallsyms: every address is 0 (read without CAP_SYSLOG, or kptr_restrict=2)")
		}
		return nil, fmt.Errorf("kallsyms: no text symbols")
	}
	sort.SliceStable(syms, func(i, j int) bool { return syms[i].addr < syms[j].addr })
	s := &Symbols{}
	for _, x := range syms {
		s.addrs = append(s.addrs, x.addr)
		s.names = append(s.names, x.name)
		s.mods = append(s.mods, x.mod)
	}
	return s, nil
}

// maxSymbolSize bounds how far past a symbol an address may lie and still be named after
// it: beyond the last symbol of a region, an address belongs to nothing known.
const maxSymbolSize = 1 << 20

// Lookup names the function holding addr, with offset and size (the distance to the
// next symbol), as the kernel prints "func+0x1c/0x40 [mod]".
func (s *Symbols) Lookup(addr uint64) (Frame, bool) {
	i := sort.Search(len(s.addrs), func(i int) bool { return s.addrs[i] > addr }) - 1
	if i < 0 {
		return Frame{PC: addr}, false
	}
	f := Frame{Func: s.names[i], Off: addr - s.addrs[i], Module: s.mods[i], PC: addr}
	if i+1 < len(s.addrs) {
		f.Size = s.addrs[i+1] - s.addrs[i]
	}
	if f.Off >= maxSymbolSize || (f.Size > 0 && f.Off >= f.Size) {
		return Frame{PC: addr}, false
	}
	return f, true
}

// Len is the number of text symbols.
func (s *Symbols) Len() int { return len(s.addrs) }
