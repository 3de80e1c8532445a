package queue

import (
	"encoding/json"
	"log/slog"
	"os"
)

// quietLogger passes River's warnings and errors to stderr and drops its routine chatter
// (leader elections, fetch loops), which would drown a worker's own progress lines.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
