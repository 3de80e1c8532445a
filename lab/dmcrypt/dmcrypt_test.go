package dmcrypt

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSwapHeaderMatchesMkswap compares our signature with the one util-linux mkswap writes
// for the same size, UUID and label: the kernel reads only these fields.
func TestSwapHeaderMatchesMkswap(t *testing.T) {
	mkswap, err := exec.LookPath("mkswap")
	if err != nil {
		t.Skip("mkswap (util-linux) not installed; it is the reference for the swap signature")
	}
	uuid := [16]byte{0x5c, 0x1f, 0x3a, 0x2e, 0x8d, 0x4b, 0x4e, 0x51, 0x9a, 0x77, 0x0b, 0xd2, 0x6e, 0x31, 0x44, 0x10}
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"1MiB", 1 << 20},
		{"odd size", 1<<20 + 1234},
		{"64MiB", 64 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "swap")
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(f, tc.size); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(mkswap, "-p", "4096", "-L", "reprolab", "-U", "5c1f3a2e-8d4b-4e51-9a77-0bd26e314410", f).CombinedOutput()
			if err != nil {
				t.Fatalf("mkswap: %v\n%s", err, out)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ParseSwapHeader(b[:4096])
			if err != nil {
				t.Fatalf("parse mkswap output: %v", err)
			}
			page, err := SwapHeader(tc.size, 4096, uuid, "reprolab")
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseSwapHeader(page)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("header differs from mkswap's:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestSwapHeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		size  int64
		page  int
		label string
		want  string
	}{
		{4096 * 5, 4096, "", "too small"},
		{1 << 20, 1000, "", "page size"},
		{1 << 20, 4096, "a label longer than sixteen", "label"},
	} {
		_, err := SwapHeader(tc.size, tc.page, [16]byte{}, tc.label)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SwapHeader(%d, %d, %q) = %v, want error containing %q", tc.size, tc.page, tc.label, err, tc.want)
		}
	}
}

// TestRequestLayout checks the dm_ioctl encoding against the offsets of struct dm_ioctl and
// struct dm_target_spec in include/uapi/linux/dm-ioctl.h.
func TestRequestLayout(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 64)
	params, err := CryptParams(key, "254:16")
	if err != nil {
		t.Fatal(err)
	}
	if want := "aes-xts-plain64 " + strings.Repeat("ab", 64) + " 0 254:16 0"; params != want {
		t.Fatalf("CryptParams = %q, want %q", params, want)
	}
	buf, err := request("swap0", flagSecureData, []Target{{0, 131072, "crypt", params}, {131072, 8, "zero", ""}})
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	for _, f := range []struct {
		name      string
		off       int
		got, want uint64
	}{
		{"version[0]", 0, uint64(le.Uint32(buf[0:])), 4},
		{"data_size", 12, uint64(le.Uint32(buf[12:])), ioctlSize},
		{"data_start", 16, uint64(le.Uint32(buf[16:])), headerSize},
		{"target_count", 20, uint64(le.Uint32(buf[20:])), 2},
		{"flags", 28, uint64(le.Uint32(buf[28:])), flagSecureData},
		{"spec0.length", 320, le.Uint64(buf[320:]), 131072},
	} {
		if f.got != f.want {
			t.Errorf("%s at %d = %d, want %d", f.name, f.off, f.got, f.want)
		}
	}
	if name := string(bytes.TrimRight(buf[48:176], "\x00")); name != "swap0" {
		t.Errorf("name = %q", name)
	}
	spec := buf[headerSize:]
	if typ := string(bytes.TrimRight(spec[24:40], "\x00")); typ != "crypt" {
		t.Errorf("target type = %q", typ)
	}
	next := int(le.Uint32(spec[20:]))
	if next%8 != 0 || next < targetSpecSize+len(params)+1 {
		t.Errorf("next = %d: not 8-aligned past the params", next)
	}
	if p := string(spec[40 : 40+len(params)]); p != params || spec[40+len(params)] != 0 {
		t.Errorf("params not NUL-terminated after the spec")
	}
	spec1 := spec[next:]
	if le.Uint64(spec1[0:]) != 131072 || string(bytes.TrimRight(spec1[24:40], "\x00")) != "zero" {
		t.Errorf("second target misplaced")
	}
	if _, err := request(strings.Repeat("x", 128), 0, nil); err == nil {
		t.Error("128-byte name accepted")
	}
	if _, err := CryptParams(key[:32], "1:2"); err == nil {
		t.Error("32-byte key accepted for aes-xts-plain64 (512-bit)")
	}
}
