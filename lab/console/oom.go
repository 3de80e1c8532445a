package console

import (
	"bytes"
	"regexp"
	"strconv"
)

// OOM is one report of the kernel's OOM killer on the console: who asked for memory, under
// which constraint, and which process was killed. It is a guest event caused by the
// workload's memory pressure, not a kernel crash (the kernel goes on running).
type OOM struct {
	Invoker    string // task whose allocation invoked the OOM killer
	Order      int    // allocation order
	Constraint string // CONSTRAINT_NONE, CONSTRAINT_MEMCG, ... ("" on kernels before 4.19)
	Memcg      bool   // a memory cgroup's limit, not the whole guest, ran out
	KilledPID  int
	Killed     string // the killed process's name
	AnonRSSkB  int    // its anonymous memory when killed
	// Start and End are byte offsets in the log given to ParseOOMs; Text is log[Start:End].
	Start, End int
	Text       []byte
}

var (
	// "dd invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0"
	// (4.x: "gfp_mask=0x14200ca(GFP_HIGHUSER_MOVABLE), nodemask=(null),  order=0, oom_score_adj=0")
	oomStartRe = regexp.MustCompile(`(?m)^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s?)?(?:\[\s*[TC]\d+\]\s?)?(.+?) invoked oom-killer: .*?order=(-?\d+)`)
	// 4.19+: "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=dd,pid=95,uid=0"
	oomConstraintRe = regexp.MustCompile(`oom-kill:constraint=(\w+)`)
	// 5.x+: "Out of memory: Killed process 95 (dd) total-vm:413424kB, anon-rss:226344kB, ..."
	// 4.x:  "Out of memory: Kill process 2131 (dd) score 871 or sacrifice child" then
	//       "Killed process 2131 (dd) total-vm:..., anon-rss:...kB, ..."
	// memcg: "Memory cgroup out of memory: Killed process ..."
	oomKilledRe = regexp.MustCompile(`(?m)^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s?)?(?:\[\s*[TC]\d+\]\s?)?(Memory cgroup out of memory: |Out of memory: )?Killed process (\d+) \((.*?)\)(?: total-vm:\d+kB, anon-rss:(\d+)kB)?[^\n]*\n`)
	oomMemcgRe  = regexp.MustCompile(`Memory cgroup out of memory|Task in /.* killed as a result of limit|CONSTRAINT_MEMCG`)
)

// ParseOOMs returns the complete OOM-killer reports in log, in order: each runs from its
// "invoked oom-killer" line to its "Killed process" line. A report still being printed
// (no kill line yet) is not returned.
func ParseOOMs(log []byte) []OOM {
	var out []OOM
	starts := oomStartRe.FindAllSubmatchIndex(log, -1)
	for i, s := range starts {
		limit := len(log)
		if i+1 < len(starts) {
			limit = starts[i+1][0]
		}
		body := log[s[0]:limit]
		k := oomKilledRe.FindSubmatchIndex(body)
		if k == nil {
			continue
		}
		// The kill line must be whole (newline-terminated): one still arriving may lack
		// its numbers. End excludes the newline.
		o := OOM{Invoker: string(log[s[2]:s[3]]), Start: s[0], End: s[0] + k[1] - 1}
		o.Order, _ = strconv.Atoi(string(log[s[4]:s[5]]))
		o.Text = log[o.Start:o.End]
		o.KilledPID, _ = strconv.Atoi(string(body[k[4]:k[5]]))
		o.Killed = string(body[k[6]:k[7]])
		if k[8] >= 0 {
			o.AnonRSSkB, _ = strconv.Atoi(string(body[k[8]:k[9]]))
		}
		if m := oomConstraintRe.FindSubmatch(o.Text); m != nil {
			o.Constraint = string(m[1])
		}
		o.Memcg = oomMemcgRe.Match(o.Text)
		out = append(out, o)
	}
	return out
}

// OOMStarted reports whether log shows an OOM-killer report that has begun.
func OOMStarted(log []byte) bool {
	return bytes.Contains(log, []byte(" invoked oom-killer: "))
}
