package spec

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// OnOOM says what a run does when the guest's OOM killer ends an iteration: the spec's
// own memory pressure caused it, so it is neither a kernel crash nor a host fault.
// "continue" (the default) records the OOM as an event and goes on looping — the time
// looped so far is real exposure; "stop" records it and ends the run there.
type OnOOM string

// The on_oom values.
const (
	OOMContinue OnOOM = "continue"
	OOMStop     OnOOM = "stop"
)

// UnmarshalYAML accepts only the two values.
func (o *OnOOM) UnmarshalYAML(n *yaml.Node) error {
	switch v := OnOOM(n.Value); v {
	case OOMContinue, OOMStop:
		*o = v
		return nil
	}
	return fmt.Errorf("line %d: on_oom: %q: want continue or stop", n.Line, n.Value)
}

// Stop reports whether an OOM kill ends the run.
func (o OnOOM) Stop() bool { return o == OOMStop }
