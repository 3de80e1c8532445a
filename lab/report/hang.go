package report

import (
	"regexp"
	"strconv"
	"strings"
)

// Hang is what a hung guest was doing when the lab asked: every CPU's backtrace (sysrq l
// and NMI backtraces), every task blocked in uncommitted sleep (sysrq w, and the D tasks of
// sysrq t), and how many tasks sysrq t showed in all.
type Hang struct {
	Title   string
	CPUs    []*Task
	Blocked []*BlockedTask
	Tasks   int // distinct tasks in the sysrq t dump, 0 when there was none
}

// BlockedTask is one task in a task dump with its scheduler state letter.
type BlockedTask struct {
	Task
	State string // "D" for uninterruptible sleep
	Where string // what it waits in, as the hung-task title names it
}

var (
	// 5.14+: "task:sh              state:D stack:0     pid:92    ppid:1      flags:0x00004002"
	taskHdrRe = regexp.MustCompile(`^task:(\S+)\s+state:([A-Za-z])\s+stack:\s*\d+\s+pid:\s*(\d+)`)
	// 3.x-5.13: "dd              D    0  2131      1 0x00000000" (comm, state, free stack, pid,
	// ppid, flags); the free-stack column is missing on some configs.
	oldTaskHdrRe = regexp.MustCompile(`^(\S.{0,15}?)\s+([RSDTtZXxKWIP])\s+(?:[0-9a-f]+\s+)?(?:\d+\s+)?(\d+)\s+(\d+)\s+0x[0-9a-f]+$`)
)

// ParseHang reads the console captured while the lab prodded a hung guest (hang.txt).
func ParseHang(log []byte) *Hang {
	h := &Hang{CPUs: CPUBacktraces(log)}
	lines := splitLines(log)
	seen := map[int]bool{}
	inState := false
	for i := 0; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i].text)
		switch {
		case strings.HasPrefix(t, "sysrq: Show State"), strings.HasPrefix(t, "SysRq : Show State"):
			inState = true
			continue
		case strings.HasPrefix(t, "sysrq:"), strings.HasPrefix(t, "SysRq :"):
			inState = false
			continue
		}
		comm, state, pid, ok := taskHeader(t)
		if !ok {
			continue
		}
		// The task's stack runs to the next task header.
		j := i + 1
		for ; j < len(lines); j++ {
			tj := strings.TrimSpace(lines[j].text)
			if _, _, _, next := taskHeader(tj); next || strings.HasPrefix(tj, "sysrq:") {
				break
			}
		}
		if !seen[pid] && inState {
			h.Tasks++
		}
		if state == "D" && !seen[pid] {
			r := &Report{CPU: -1, PID: -1}
			ru := hungRule()
			fs, _ := frames(lines[i+1:j], r, ru)
			bt := &BlockedTask{Task: Task{PID: pid, Comm: comm, CPU: -1, Frames: fs}, State: state}
			bt.Guilty, bt.Where = hangFrame(fs, ru)
			if bt.Where == "" && bt.Guilty >= 0 {
				bt.Where = cleanFunc(fs[bt.Guilty].Func)
			}
			h.Blocked = append(h.Blocked, bt)
		}
		seen[pid] = true
		i = j - 1
	}
	h.Title = h.title()
	return h
}

func taskHeader(t string) (comm, state string, pid int, ok bool) {
	if m := taskHdrRe.FindStringSubmatch(t); m != nil {
		pid, _ = strconv.Atoi(m[3])
		return m[1], m[2], pid, true
	}
	if m := oldTaskHdrRe.FindStringSubmatch(t); m != nil {
		pid, _ = strconv.Atoi(m[3])
		return strings.TrimSpace(m[1]), m[2], pid, true
	}
	return "", "", 0, false
}

// hungRule is the hung-task detector's rule: a blocked task in a sysrq dump is judged
// the way the detector's report of it would be.
func hungRule() *rule {
	for i := range rules {
		if rules[i].typ == HungTask && rules[i].hang {
			return &rules[i]
		}
	}
	return nil
}

// title names the hang the way syzbot names a hung task: after where the first blocked
// task waits; with none blocked, after where the first busy CPU spins.
func (h *Hang) title() string {
	for _, b := range h.Blocked {
		if b.Where != "" {
			return "INFO: task hung in " + b.Where
		}
	}
	for _, c := range h.CPUs {
		if c.Guilty >= 0 && len(c.Frames) > 1 && !messenger(c) {
			return "INFO: cpu stuck in " + cleanFunc(c.Frames[c.Guilty].Func)
		}
	}
	return "no output from test machine"
}

// messenger: the CPU that ran the sysrq handler printing the backtraces is busy only
// because it was asked.
func messenger(t *Task) bool {
	for _, f := range t.Frames {
		if strings.Contains(f.Func, "sysrq") {
			return true
		}
	}
	return false
}
