package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/attachd/attachd/server/index"
)

// commitSteps are the failpoints of the commit protocol (commit.go).
var commitSteps = []string{
	"blob-rename", "blob-fsync", "mkdir", "mkdir-fsync", "sidecar-create", "sidecar-write",
	"sidecar-fsync", "link-previous", "sidecar-rename", "sidecar-dir-fsync", "move-aside", "index",
}

// failAt makes the first call of failpoint step fail with a full disk whose
// message names an absolute path, and reports whether it was reached.
func failAt(t *testing.T, step string) *bool {
	t.Helper()
	hit := new(bool)
	prev := failpoint
	failpoint = func(s string) error {
		if s == step && !*hit {
			*hit = true
			return &fs.PathError{Op: "write", Path: "/secret/data/dir/file", Err: syscall.ENOSPC}
		}
		return nil
	}
	t.Cleanup(func() { failpoint = prev })
	return hit
}

// treeState is everything a change may touch: what the index serves (each
// object with its bytes' hash and its record) and every file and folder in
// the data directory but the index's own.
type treeState struct {
	index []string
	disk  []string
}

func stateOf(t *testing.T, s *Store, dir string) treeState {
	t.Helper()
	ctx := context.Background()
	var st treeState
	var walk func(key string)
	walk = func(key string) {
		entries, err := s.List(ctx, key)
		if err != nil {
			t.Fatalf("list %q: %v", key, err)
		}
		for _, e := range entries {
			if e.IsDir {
				st.index = append(st.index, "dir "+e.Key+" "+string(e.Dir.Props))
				walk(e.Key)
				continue
			}
			o := e.Object
			got := sum(readAll(t, s, e.Key))
			st.index = append(st.index, fmt.Sprintf("obj %s %d %s %s meta=%s props=%s", o.Key, o.Size, o.SHA256, got, o.Meta, o.Props))
		}
	}
	walk("")
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case strings.HasPrefix(rel, "index.db"), rel == "lock", rel == "clean-shutdown", rel == ".":
			return nil
		case d.IsDir():
			st.disk = append(st.disk, rel+"/")
		default:
			b, _ := os.ReadFile(path)
			if strings.HasPrefix(rel, "blobs/") {
				b = nil // named by its version; the index's hash covers its bytes
			}
			st.disk = append(st.disk, rel+" "+string(b))
		}
		return nil
	})
	return st
}

func (a treeState) diff(b treeState) string {
	if slices.Equal(a.index, b.index) && slices.Equal(a.disk, b.disk) {
		return ""
	}
	return fmt.Sprintf("index before:\n  %s\nindex after:\n  %s\ndisk before:\n  %s\ndisk after:\n  %s",
		strings.Join(a.index, "\n  "), strings.Join(b.index, "\n  "),
		strings.Join(a.disk, "\n  "), strings.Join(b.disk, "\n  "))
}

type commitOp struct {
	name  string
	setup func(t *testing.T, s *Store)
	do    func(s *Store) error
}

func putOp(key, body string) func(s *Store) error {
	return func(s *Store) error {
		_, err := s.Put(context.Background(), key, strings.NewReader(body), Info{Size: -1, ContentType: "audio/mpeg", Meta: []byte(`{"v":"` + body + `"}`)})
		return err
	}
}

func setupPut(keys ...string) func(t *testing.T, s *Store) {
	return func(t *testing.T, s *Store) {
		for _, k := range keys {
			if err := putOp(k, "v1 of "+k)(s); err != nil {
				t.Fatal(err)
			}
		}
	}
}

var commitOps = []commitOp{
	{"put new", setupPut("a/x"), putOp("a/y", "new")},
	{"put new folders", setupPut("a/x"), putOp("n1/n2/z", "new")},
	{"overwrite", setupPut("a/x"), putOp("a/x", "v2")},
	{"update", setupPut("a/x"), func(s *Store) error {
		_, err := s.Update(context.Background(), "a/x", func(o *Object) bool { o.Props = []byte(`{"p":"1"}`); return true })
		return err
	}},
	{"delete", setupPut("a/x", "a/y"), func(s *Store) error { return s.Delete(context.Background(), "a/x") }},
	{"mkdir", setupPut("a/x"), func(s *Store) error { return s.Mkdir(context.Background(), "a/d") }},
	{"remove folder", setupPut("a/b/x", "a/b/y", "a/z"), func(s *Store) error { return s.RemoveAll(context.Background(), "a/b") }},
	{"move object", setupPut("a/x"), func(s *Store) error { return s.Move(context.Background(), "a/x", "a/y", false) }},
	{"move over object", setupPut("a/x", "a/y"), func(s *Store) error { return s.Move(context.Background(), "a/x", "a/y", true) }},
	{"copy object", setupPut("a/x"), func(s *Store) error { return s.Copy(context.Background(), "a/x", "a/y", false) }},
	{"move folder", setupPut("a/b/x", "c/y"), func(s *Store) error { return s.Move(context.Background(), "a/b", "c/b", false) }},
	{"copy folder", setupPut("a/b/x", "a/b/y"), func(s *Store) error { return s.Copy(context.Background(), "a/b", "a/c", false) }},
}

// TestCommitFailureAtEveryStep fails each step of every kind of change with
// a full disk and checks that the change answers ErrNoSpace without a server
// path, leaves the previous state exactly (in the index and on disk), and
// that a restart finds the same state.
func TestCommitFailureAtEveryStep(t *testing.T) {
	reached := map[string]bool{}
	for _, op := range commitOps {
		for _, step := range commitSteps {
			t.Run(op.name+"/"+step, func(t *testing.T) {
				dir := t.TempDir()
				s := openTest(t, dir)
				defer func() { s.Close() }()
				op.setup(t, s)
				before := stateOf(t, s, dir)
				hit := failAt(t, step)
				err := op.do(s)
				if !*hit {
					if err != nil {
						t.Fatalf("%s failed without a fault: %v", op.name, err)
					}
					return
				}
				reached[step] = true
				if !errors.Is(err, ErrNoSpace) {
					t.Fatalf("failure at %s: got %v, want ErrNoSpace", step, err)
				}
				if strings.Contains(err.Error(), "/secret") || strings.Contains(err.Error(), dir) {
					t.Errorf("error names a server path: %v", err)
				}
				if d := before.diff(stateOf(t, s, dir)); d != "" {
					t.Fatalf("failure at %s changed the state:\n%s", step, d)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = openTest(t, dir)
				if d := before.diff(stateOf(t, s, dir)); d != "" {
					t.Fatalf("after a restart, failure at %s changed the state:\n%s", step, d)
				}
			})
		}
	}
	for _, step := range commitSteps {
		if !reached[step] {
			t.Errorf("no change reaches step %s", step)
		}
	}
}

// TestCommitInDoubtCompletesOnRestart makes the index refuse a change and
// the undo fail too: the error says so, both versions' bytes stay, and the
// next start, even after a clean stop, serves the new version whole.
func TestCommitInDoubtCompletesOnRestart(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	setupPut("a/x")(t, s)
	prev := failpoint
	failpoint = func(step string) error {
		if step == "index" || step == "undo" {
			return syscall.EIO
		}
		return nil
	}
	err := putOp("a/x", "v2")(s)
	failpoint = prev
	if err == nil || !isInDoubt(err) {
		t.Fatalf("got %v, want an in-doubt failure", err)
	}
	// Until the restart, the index still serves the previous version whole.
	if got := string(readAll(t, s, "a/x")); got != "v1 of a/x" {
		t.Fatalf("before restart: got %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "clean-shutdown")); err == nil {
		t.Fatal("a store with a change in doubt was marked clean")
	}
	s = openTest(t, dir)
	defer s.Close()
	if got := string(readAll(t, s, "a/x")); got != "v2" {
		t.Fatalf("after restart: got %q, want the new version", got)
	}
	if n := countBlobs(t, dir); n != 1 {
		t.Fatalf("%d blobs after reconciliation, want 1", n)
	}
}

// TestIndexFullIsNoSpace: an index that is full (SQLITE_FULL, which package
// sqlite reports as index.ErrFull) is ErrNoSpace, as a full disk is.
func TestIndexFullIsNoSpace(t *testing.T) {
	err := indexErr(fmt.Errorf("index object: %w: %w", index.ErrFull, errors.New("database or disk is full")))
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("index full: got %v, want ErrNoSpace", err)
	}
	if err := indexErr(errors.New("SQL logic error")); errors.Is(err, ErrNoSpace) {
		t.Fatalf("another index error mapped to ErrNoSpace")
	}
	var buf bytes.Buffer
	buf.WriteString(mapErr(&fs.PathError{Op: "write", Path: "/abs/data/tmp/x", Err: syscall.ENOSPC}).Error())
	if strings.Contains(buf.String(), "/abs") {
		t.Fatalf("mapped error names the path: %s", buf.String())
	}
}

// TestCommitFailuresInABatch stores many objects at once, so that their
// index changes commit in batches (group commit, server/index/sqlite), and
// makes the index refuse every third change: each refused store answers
// ErrNoSpace and leaves its key's previous state (version or nothing, in the
// index and on disk); its batch-mates are stored; a restart agrees.
func TestCommitFailuresInABatch(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	defer func() { s.Close() }()
	ctx := context.Background()
	const n = 48
	for i := 0; i < n; i += 2 { // the even keys have a version to keep
		if err := putOp(fmt.Sprintf("a/%d", i), "v1")(s); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	calls := 0
	prev := failpoint
	failpoint = func(step string) error {
		if step != "index" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls%3 == 0 {
			return &fs.PathError{Op: "write", Path: "/secret/index", Err: syscall.ENOSPC}
		}
		return nil
	}
	defer func() { failpoint = prev }()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = putOp(fmt.Sprintf("a/%d", i), "v2")(s)
		}()
	}
	wg.Wait()
	failpoint = prev
	want := func(i int) string { // the body key a/i must have, "" for none
		switch {
		case errs[i] == nil:
			return "v2"
		case i%2 == 0:
			return "v1"
		}
		return ""
	}
	check := func(when string) {
		failed := 0
		for i := range n {
			key := fmt.Sprintf("a/%d", i)
			if errs[i] != nil {
				failed++
				if !errors.Is(errs[i], ErrNoSpace) {
					t.Errorf("%s: %s: got %v, want ErrNoSpace", when, key, errs[i])
				}
			}
			_, serr := os.Stat(filepath.Join(dir, "objects", key))
			rc, _, err := s.Open(ctx, key)
			if want(i) == "" {
				if !errors.Is(err, ErrNotFound) || serr == nil {
					t.Errorf("%s: refused new %s: open %v, sidecar stat %v; want neither", when, key, err, serr)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %s: %v", when, key, err)
				continue
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) != want(i) {
				t.Errorf("%s: %s holds %q, want %q", when, key, b, want(i))
			}
		}
		if failed == 0 || failed == n {
			t.Errorf("%s: %d of %d stores failed: the test needs some of each", when, failed, n)
		}
	}
	check("after the stores")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	check("after a restart")
	if got := countBlobs(t, dir); got != n-countFailedNew(errs) {
		t.Errorf("%d blobs on disk, want one per object (%d)", got, n-countFailedNew(errs))
	}
}

func countFailedNew(errs []error) int {
	c := 0
	for i, err := range errs {
		if err != nil && i%2 == 1 {
			c++
		}
	}
	return c
}
