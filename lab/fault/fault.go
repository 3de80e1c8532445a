// Package fault is the one classification of errors in reprolab: whose fault a failure
// is decides what a run, a matrix, a validation or a bisection does with it, and which
// exit code the CLI returns. It is written once here and read with errors.As, never by
// matching message text.
//
//   - Input: the user's to fix (unknown key, missing file, patch that does not apply,
//     bad flag). Nothing was run; exit 2.
//   - Infra: the lab's or the host's (QEMU died, disk full, SSH lost, setup step
//     failed). Never evidence about the kernel; retried by campaigns; exit 3.
//   - Boot: the kernel never brought the guest up and printed no crash; exit 5.
//   - Crash: a kernel crash surfaced as an error (a result elsewhere); exit 1.
//
// An error that is none of these (a plain error from a library) counts as Infra: an
// unclassified failure must never be mistaken for a verdict about the kernel.
package fault

import (
	"errors"
	"fmt"
)

// Kind is the class of a failure.
type Kind int

// The kinds, in the order ExitCode prefers them when several are wrapped together
// (input first: a wrong input explains whatever failed after it).
const (
	None Kind = iota
	Input
	Boot
	Crash
	Infra
)

func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case Input:
		return "bad input"
	case Boot:
		return "boot failed"
	case Crash:
		return "kernel crash"
	case Infra:
		return "infrastructure error"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Exit codes of the CLI (README "Outcomes and exit codes").
const (
	ExitOK         = 0
	ExitCrashed    = 1
	ExitInput      = 2
	ExitInfra      = 3
	ExitHung       = 4
	ExitBootFailed = 5
	// ExitChanged: a validated patch changed the crash into another one.
	ExitChanged = 6
	// ExitInconclusive: a validation could not decide (baseline does not reproduce,
	// budget spent before the target confidence).
	ExitInconclusive = 7
	ExitInterrupted  = 130
)

// Error is a classified error. Use the constructors; the zero Kind is not valid.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Inputf is a bad-input error with a formatted message (%w wraps as in fmt.Errorf).
func Inputf(format string, a ...any) error { return &Error{Kind: Input, Err: fmt.Errorf(format, a...)} }

// Infraf is an infrastructure error with a formatted message.
func Infraf(format string, a ...any) error { return &Error{Kind: Infra, Err: fmt.Errorf(format, a...)} }

// Bootf is a boot failure with a formatted message.
func Bootf(format string, a ...any) error { return &Error{Kind: Boot, Err: fmt.Errorf(format, a...)} }

// Crashf is a kernel crash surfaced as an error.
func Crashf(format string, a ...any) error { return &Error{Kind: Crash, Err: fmt.Errorf(format, a...)} }

// Wrap classifies err as kind (nil stays nil). An err already classified keeps its kind:
// a wrapper cannot turn bad input into an infrastructure error by accident.
func Wrap(kind Kind, err error) error {
	if err == nil {
		return nil
	}
	if KindOf(err) != Infra || isClassified(err) {
		return err
	}
	return &Error{Kind: kind, Err: err}
}

// AsInput classifies err as bad input unless it already has a kind.
func AsInput(err error) error { return Wrap(Input, err) }

// AsInfra classifies err as an infrastructure error unless it already has a kind.
func AsInfra(err error) error { return Wrap(Infra, err) }

func isClassified(err error) bool {
	var e *Error
	var k kinder
	return errors.As(err, &e) || errors.As(err, &k)
}

// kinder lets another package's error type carry a kind without wrapping in *Error
// (for instance a parse error with file:line fields that callers read with errors.As).
type kinder interface{ FaultKind() Kind }

// KindOf is err's class: None for nil, Infra for an unclassified error. For an error
// that wraps several (a multierror, errors.Join), the most telling kind wins: Input,
// then Boot, Crash, Infra.
func KindOf(err error) Kind {
	if err == nil {
		return None
	}
	best := Kind(0)
	walk(err, func(e error) {
		var k Kind
		switch v := e.(type) {
		case *Error:
			k = v.Kind
		case kinder:
			k = v.FaultKind()
		default:
			return
		}
		if k != None && (best == None || k < best) {
			best = k
		}
	})
	if best == None {
		return Infra
	}
	return best
}

// walk visits err and everything it wraps, through Unwrap() error and Unwrap() []error
// (errors.Join, fmt.Errorf with several %w) and go-multierror's chain.
func walk(err error, f func(error)) {
	if err == nil {
		return
	}
	f(err)
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walk(e, f)
		}
	case interface{ WrappedErrors() []error }: // go-multierror
		for _, e := range u.WrappedErrors() {
			walk(e, f)
		}
	case interface{ Unwrap() error }:
		walk(u.Unwrap(), f)
	}
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// IsInput reports whether err is the user's to fix.
func IsInput(err error) bool { return Is(err, Input) }

// ExitCode maps an error to the CLI's exit code: 0 for nil.
func ExitCode(err error) int {
	switch KindOf(err) {
	case None:
		return ExitOK
	case Input:
		return ExitInput
	case Boot:
		return ExitBootFailed
	case Crash:
		return ExitCrashed
	}
	return ExitInfra
}
