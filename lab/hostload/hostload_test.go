package hostload

import (
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		file    string
		want    Load
		busy    bool
		wantErr string
	}{
		{file: "idle", want: Load{Load1: 0.52, Load5: 0.58, Load15: 0.59}},
		{file: "busy", want: Load{Load1: 5.10, Load5: 3.20, Load15: 1.05}, busy: true},
		{file: "short", wantErr: "three fields"},
		{file: "garbage", wantErr: `field 1 "x"`},
		{file: "missing", wantErr: "no such file"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			old := path
			path = "testdata/" + tc.file
			defer func() { path = old }()
			l, err := Read()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Read() error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.Cores = 0
			if l != tc.want {
				t.Fatalf("Read() = %+v, want %+v", l, tc.want)
			}
			l.Cores = 2
			if l.Busy() != tc.busy {
				t.Fatalf("Busy() = %v on 2 cores at %v", l.Busy(), l)
			}
			w := Warning("a matrix")
			// Warning compares with this host's real core count, so only its wording is
			// checked, when it fires.
			if w != "" && !strings.Contains(w, "a matrix starts on a busy host") {
				t.Fatalf("Warning() = %q", w)
			}
		})
	}
}
