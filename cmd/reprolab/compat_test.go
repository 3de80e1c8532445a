package main

import (
	"io"
	"os"
)

// kernelMain runs `reprolab kernel ARGS...` in-process (tests).
func kernelMain(args []string) int {
	return execute(append([]string{"kernel"}, args...), io.Discard, os.Stderr)
}
