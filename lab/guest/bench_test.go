package guest

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// BenchmarkGuest measures the transport on one booted Debian x86_64 guest (TCG): a command
// round trip, and bulk transfer in both directions (reported as MB/s).
func BenchmarkGuest(b *testing.B) {
	g := boot(b, debianTarget(b, "x86_64"))
	ctx := context.Background()
	b.Run("roundtrip", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if code, err := g.client.Run(ctx, "true", nil, nil); err != nil || code != 0 {
				b.Fatal(code, err)
			}
		}
	})
	const size = 8 << 20
	b.Run("download", func(b *testing.B) {
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			var n countWriter
			if code, err := g.client.Run(ctx, "head -c 8388608 /dev/zero", &n, nil); err != nil || code != 0 || n != size {
				b.Fatal(code, err, n)
			}
		}
	})
	b.Run("upload", func(b *testing.B) {
		data := bytes.Repeat([]byte{1}, size)
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			if err := g.client.Upload(ctx, "/tmp/bench", bytes.NewReader(data), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

var _ io.Writer = new(countWriter)
