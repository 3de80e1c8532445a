package guest

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestAwaitReady(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream string
		rest   string // what must be left unread after Ready
		ok     bool
	}{
		{"clean", Ready + "SSH-2.0-Go\r\n", "SSH-2.0-Go\r\n", true},
		{"stale bytes of an old connection first", "\x17\x03garbage\x00\x00repro" + Ready + "SSH-2.0-Go\r\n", "SSH-2.0-Go\r\n", true},
		{"partial marker then the real one", Ready[:20] + Ready + "x", "x", true},
		{"no marker", "SSH-2.0-Go\r\n", "", false},
		{"eof inside the marker", Ready[:len(Ready)-1], "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := strings.NewReader(tc.stream)
			err := awaitReady(r)
			if (err == nil) != tc.ok {
				t.Fatalf("awaitReady = %v, want ok=%v", err, tc.ok)
			}
			if rest, _ := io.ReadAll(r); tc.ok && string(rest) != tc.rest {
				t.Errorf("left %q unread, want %q", rest, tc.rest)
			}
		})
	}
	if bytes.Contains([]byte(Hello), []byte(Ready)) || Hello == Ready {
		t.Error("Hello and Ready must differ")
	}
}
