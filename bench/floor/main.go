// Command floor is the least a Go net/http server can do for a WebDAV PUT, for bench/floor.sh to
// measure beside nginx and attachd: it writes the body to a temporary file through a pooled
// 256 KiB buffer and renames it to a name derived from the path, nothing more. With -sha it
// hashes the body with SHA-256 as it is written, with -fsync it syncs the file before the rename:
// the two promises of attachd's that cost CPU whatever the server's design. What attachd spends
// beyond floor -sha -fsync is the cost of its own design (index, sidecar, middleware); what floor
// spends beyond nginx is the cost of Go's HTTP server and runtime.
//
//	go run ./bench/floor -listen 127.0.0.1:8081 -dir /dev/shm/floor [-sha] [-fsync]
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"hash"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8081", "address to listen on (loopback)")
	dir := flag.String("dir", "", "folder the bodies are written to (made if missing)")
	sha := flag.Bool("sha", false, "hash each body with SHA-256 as it is written")
	fsync := flag.Bool("fsync", false, "sync each file before it is renamed into place")
	flag.Parse()
	if *dir == "" {
		log.Fatal("floor: -dir is required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	s := &server{dir: *dir, sha: *sha, fsync: *fsync}
	log.Fatal(http.ListenAndServe(*addr, s))
}

type server struct {
	dir        string
	sha, fsync bool
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(w, "PUT only", http.StatusMethodNotAllowed)
		return
	}
	// The path names the file, flattened into one folder: no MKCOL is needed and no two
	// requests of bench/wrk.lua share a path.
	name := filepath.Join(s.dir, strings.ReplaceAll(strings.Trim(r.URL.Path, "/"), "/", "_"))
	if err := s.put(name, r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *server) put(name string, body io.Reader) error {
	f, err := os.CreateTemp(s.dir, ".put-")
	if err != nil {
		return err
	}
	var h hash.Hash
	// Not f itself: *os.File's ReadFrom would copy through a buffer of its own.
	dst := io.Writer(struct{ io.Writer }{f})
	if s.sha {
		h = sha256.New()
		dst = io.MultiWriter(f, h)
	}
	bp := buffers.Get().(*[]byte)
	_, err = io.CopyBuffer(dst, body, *bp)
	buffers.Put(bp)
	if err == nil && s.fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if h != nil {
		h.Sum(nil) // the last block and padding, as a server that records the hash runs them
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name()) // only on failure: a deferred remove would cost every PUT an unlink
		return fmt.Errorf("put %s: %w", name, err)
	}
	return nil
}
