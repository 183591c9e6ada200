package e2e

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// tmpSize returns the bytes held under <data-dir>/tmp.
func tmpSize(dataDir string) int64 {
	var n int64
	filepath.WalkDir(filepath.Join(dataDir, "tmp"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// TestCrashMidUpload starts a 500 MiB PUT, kills attachd with SIGKILL once
// about 100 MiB are in, and restarts it on the same data directory: the key
// must be absent (or its earlier version intact, by SHA-256) and tmp/ empty
// (docs/design.md, invariant 2).
func TestCrashMidUpload(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	for _, previous := range []bool{false, true} {
		t.Run(fmt.Sprintf("previous=%v", previous), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, serverOptions{})
			target := fmt.Sprintf("/p/%s/crash/%s.wav", acctA, hex32(t.Name()))
			var prev []byte
			if previous {
				prev = pseudoRandom("crash-prev", 1<<20)
				wantStored(t, "earlier version", srv.put(t, target, "audio/wav", prev))
			}

			const declared, sent = 500 << 20, 100 << 20
			head := wireRequest{Method: "PUT", URL: kazooBase + target, ContentType: "audio/wav"}.head(declared)
			conn, err := net.Dial("tcp", srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(90 * time.Second))
			if _, err := conn.Write(rewriteHost(t, head, srv.Addr)); err != nil {
				t.Fatal(err)
			}
			if _, err := io.CopyN(conn, newRand("crash-body"), sent); err != nil {
				t.Fatalf("sending the first 100 MiB: %v", err)
			}
			// The writes returned, so the server has read all but the socket
			// buffers; wait until its temp file shows it is mid-body.
			deadline := time.Now().Add(10 * time.Second)
			for tmpSize(srv.DataDir) < 64<<20 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := tmpSize(srv.DataDir); n < 64<<20 {
				t.Errorf("tmp/ holds %d bytes after 100 MiB were sent; in-flight uploads should be spooled there", n)
			}

			srv.kill(t)
			conn.Close()
			srv.restart(t)

			r := srv.get(t, target)
			if previous {
				wantObject(t, "GET after crash", r, prev, "audio/wav")
			} else {
				wantStatus(t, "GET after crash", r, http.StatusNotFound)
			}
			if left := tmpEntries(t, srv.DataDir); len(left) > 0 {
				t.Errorf("tmp/ after restart: %v, want empty", left)
			}
		})
	}
}

// TestCrashAfterCreated kills attachd with SIGKILL right after it answered
// 201: a 2xx means durable (docs/design.md, invariant 1), so the object, new or
// overwritten, must be there after a restart.
func TestCrashAfterCreated(t *testing.T) {
	t.Parallel()
	for _, overwrite := range []bool{false, true} {
		t.Run(fmt.Sprintf("overwrite=%v", overwrite), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, serverOptions{})
			target := fmt.Sprintf("/p/%s/crash/%s.mp3", acctA, hex32(t.Name()))
			if overwrite {
				wantStored(t, "first version", srv.put(t, target, "audio/mpeg", pseudoRandom("crash-201-old", 3<<20)))
			}
			media := pseudoRandom("crash-201", 4<<20)
			wantStored(t, "PUT", srv.put(t, target, "audio/mpeg", media))
			srv.kill(t)
			srv.restart(t)
			wantObject(t, "GET after kill -9", srv.get(t, target), media, "audio/mpeg")
			if left := tmpEntries(t, srv.DataDir); len(left) > 0 {
				t.Errorf("tmp/ after restart: %v, want empty", left)
			}
		})
	}
}
