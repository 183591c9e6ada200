package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/attachd/attachd/server/index/pg/pgtest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
	"github.com/attachd/attachd/server/index/pg"
	"github.com/attachd/attachd/server/index/sqlite"
)

// copySource fills a data directory as a single node in spool mode leaves
// it: objects in nested folders (one under a name that needs escaping), an
// explicit empty folder with dead properties, a live lock, hook deliveries
// pending, retried and dead, and the replication of the spool pending. It
// is stopped cleanly.
func copySource(t *testing.T, objects int) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{Sinks: []string{"hook:a"}, Remote: NewMemBackend()})
	if err != nil {
		t.Fatal(err)
	}
	odd, err := JoinKey("", "fäx 100%", "über.pdf")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{odd, "x/y/z"}
	for i := range objects {
		keys = append(keys, fmt.Sprintf("a/%d/v%03d.mp3", i%3, i))
	}
	for i, k := range keys {
		_, err := s.Put(ctx, k, strings.NewReader("body of "+k), Info{ContentType: "audio/mpeg", DocID: fmt.Sprintf("doc%d", i),
			MediaID: fmt.Sprintf("media%d", i), Meta: json.RawMessage(`{"caller":"+1555` + fmt.Sprint(i) + `"}`),
			Props: json.RawMessage(`{}`), Size: -1})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Mkdir(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateDir(ctx, "empty", func(d *Dir) bool {
		d.Props = []byte(`{"{urn:x}color":"blue"}`)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.CreateLock(ctx, Lock{Token: "opaquelocktoken:1", Root: "x/y", Owner: "<href>me</href>", User: "ops",
		Created: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ds, err := s.ClaimDeliveries(ctx, "hook:a", 2, time.Minute)
	if err != nil || len(ds) != 2 {
		t.Fatalf("claim: %v, %v", ds, err)
	}
	if err := s.FinishDeliveries(ctx, []Outcome{{ID: ds[0].ID, Dead: true, Error: "410 Gone"},
		{ID: ds[1].ID, Next: now.Add(time.Hour), Error: "503"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// indexContent is everything an index holds, but delivery IDs.
type indexContent struct {
	objects    []index.Object
	dirs       []index.Dir
	locks      []index.Lock
	deliveries []index.QueuedDelivery
}

func readIndex(t *testing.T, x index.Index) indexContent {
	t.Helper()
	ctx := context.Background()
	var c indexContent
	if err := x.Walk(ctx, "", func(o index.Object) error { c.objects = append(c.objects, o); return nil }); err != nil {
		t.Fatal(err)
	}
	ex := x.(index.Exporter)
	if err := ex.Dirs(ctx, "", func(d index.Dir) error { c.dirs = append(c.dirs, d); return nil }); err != nil {
		t.Fatal(err)
	}
	var err error
	if c.locks, err = x.Locks(ctx, "", true, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ex.Deliveries(ctx, 0, func(q index.QueuedDelivery) error {
		q.ID = 0
		c.deliveries = append(c.deliveries, q)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

func sourceContent(t *testing.T, dir string) indexContent {
	t.Helper()
	x, err := sqlite.OpenExisting(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	return readIndex(t, x)
}

func targetContent(t *testing.T, u string) indexContent {
	t.Helper()
	x, err := pg.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	return readIndex(t, x)
}

// sameContent reports how the target differs from the source, whose
// replication was renamed to sink.
func sameContent(src, dst indexContent, sink string) error {
	if !slices.EqualFunc(src.objects, dst.objects, func(a, b index.Object) bool {
		return a.Key == b.Key && a.Blob == b.Blob && a.Size == b.Size && a.SHA256 == b.SHA256 &&
			a.ContentType == b.ContentType && a.DocID == b.DocID && a.MediaID == b.MediaID &&
			bytes.Equal(a.Meta, b.Meta) && bytes.Equal(a.Props, b.Props) &&
			a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated) && a.ModTime.Equal(b.ModTime)
	}) {
		return fmt.Errorf("objects differ:\n%+v\n%+v", src.objects, dst.objects)
	}
	if !slices.EqualFunc(src.dirs, dst.dirs, func(a, b index.Dir) bool {
		return a.Key == b.Key && bytes.Equal(a.Props, b.Props) && a.Created == b.Created && a.ModTime == b.ModTime
	}) {
		return fmt.Errorf("folders differ:\n%+v\n%+v", src.dirs, dst.dirs)
	}
	if !slices.EqualFunc(src.locks, dst.locks, func(a, b index.Lock) bool {
		return a.Token == b.Token && a.Root == b.Root && a.ZeroDepth == b.ZeroDepth && a.Shared == b.Shared &&
			a.Owner == b.Owner && a.User == b.User && a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires)
	}) {
		return fmt.Errorf("locks differ:\n%+v\n%+v", src.locks, dst.locks)
	}
	if !slices.EqualFunc(src.deliveries, dst.deliveries, func(a, b index.QueuedDelivery) bool {
		if a.Sink == ReplicateSink && sink != "" {
			a.Sink = sink
		}
		ao, bo, an, bn := a.Occurred, b.Occurred, a.Next, b.Next
		a.Occurred, b.Occurred, a.Next, b.Next = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		return a == b && ao.Equal(bo) && an.Equal(bn)
	}) {
		return fmt.Errorf("deliveries differ:\n%+v\n%+v", src.deliveries, dst.deliveries)
	}
	return nil
}

func TestCopyIndex(t *testing.T) {
	ctx := context.Background()
	dir := copySource(t, 10)
	src := sourceContent(t, dir)
	if len(src.objects) != 12 || len(src.dirs) != 8 || len(src.locks) != 1 || len(src.deliveries) != 24 {
		t.Fatalf("source: %d objects, %d folders, %d locks, %d deliveries",
			len(src.objects), len(src.dirs), len(src.locks), len(src.deliveries))
	}
	u := pgtest.Database(t)
	var phases []string
	res, err := CopyIndex(ctx, dir, u, CopyOptions{Node: "0123456789abcdef", Batch: 5, Progress: func(p CopyProgress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := CopyCounts{Objects: 12, Folders: 8, Locks: 1, Deliveries: 24}
	if res.CopyCounts != want || res.Resumed || res.Replicating != 12 || res.RenamedTo != "replicate@0123456789abcdef" {
		t.Fatalf("result %+v", res)
	}
	if !slices.Equal(phases, []string{"folders", "objects", "deliveries", "done"}) {
		t.Errorf("progress phases %q", phases)
	}
	if err := sameContent(src, targetContent(t, u), res.RenamedTo); err != nil {
		t.Fatal(err)
	}
	// Copied once: again is refused, and adds nothing.
	if _, err := CopyIndex(ctx, dir, u, CopyOptions{Node: "0123456789abcdef"}); err == nil ||
		!strings.Contains(err.Error(), "was copied into the PostgreSQL index at") {
		t.Fatalf("second copy: %v", err)
	}
	// The data directory is left as it was, and attachd opens it.
	s, err := Open(dir, Options{Remote: NewMemBackend()})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestCopyIndexResumes interrupts a copy in each phase, and once as if it
// died between a batch's commit and the record of it; run again, it ends
// as an uninterrupted copy does.
func TestCopyIndexResumes(t *testing.T) {
	dir := copySource(t, 30)
	src := sourceContent(t, dir)
	u := pgtest.Database(t)
	opts := CopyOptions{Node: "n1", Batch: 4}
	stopAt := func(phase string, n int64) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		o := opts
		o.Progress = func(p CopyProgress) {
			var got int64
			switch p.Phase {
			case copyFolders:
				got = p.Done.Folders
			case copyObjects:
				got = p.Done.Objects
			case copyDeliveries:
				got = p.Done.Deliveries
			}
			if p.Phase == phase && got >= n {
				cancel()
			}
		}
		_, err := CopyIndex(ctx, dir, u, o)
		return err
	}
	for _, at := range []struct {
		phase string
		n     int64
	}{{copyFolders, 4}, {copyObjects, 8}, {copyObjects, 20}, {copyDeliveries, 12}} {
		err := stopAt(at.phase, at.n)
		if err == nil || !strings.Contains(err.Error(), "run the same command again to continue") {
			t.Fatalf("interrupted in %s: %v", at.phase, err)
		}
		st, _ := readCopyState(dir)
		t.Logf("interrupted: %v; state %+v", err, st)
		if st.Phase != at.phase {
			t.Fatalf("stopped in phase %s, want %s", st.Phase, at.phase)
		}
	}
	// As if the last batch was committed but not recorded: it is copied again.
	st, _ := readCopyState(dir)
	st.AfterID -= 4
	st.Done.Deliveries -= 4
	c := &indexCopy{dir: dir, st: *st}
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	res, err := CopyIndex(context.Background(), dir, u, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Objects != 32 || res.Deliveries != int64(len(src.deliveries)) {
		t.Fatalf("result %+v", res)
	}
	if err := sameContent(src, targetContent(t, u), "replicate@n1"); err != nil {
		t.Fatal(err)
	}
}

func TestCopyIndexRefuses(t *testing.T) {
	ctx := context.Background()
	dir := copySource(t, 2)
	u := pgtest.Database(t)
	node := CopyOptions{Node: "n1"}

	// Its replication needs the node it will be in the cluster.
	if _, err := CopyIndex(ctx, dir, u, CopyOptions{}); err == nil || !strings.Contains(err.Error(), "4 objects are still in the spool") {
		t.Errorf("without a node: %v", err)
	}
	// A running attachd.
	s, err := Open(dir, Options{Remote: NewMemBackend()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CopyIndex(ctx, dir, u, node); err == nil || !strings.Contains(err.Error(), "stop attachd first") {
		t.Errorf("beside a running attachd: %v", err)
	}
	// One that did not stop cleanly.
	os.Remove(filepath.Join(dir, "lock"))
	if _, err := CopyIndex(ctx, dir, u, node); err == nil || !strings.Contains(err.Error(), "did not stop cleanly") {
		t.Errorf("after an unclean stop: %v", err)
	}
	s.Close()

	// A target that holds objects of its own.
	x, err := pg.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Update(ctx, func(tx index.Tx) error {
		return tx.PutObject(index.Object{Key: "theirs/o", Blob: "b", Created: time.Now(), Updated: time.Now(), ModTime: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	_, err = CopyIndex(ctx, dir, u, node)
	if err == nil || !strings.Contains(err.Error(), "already holds 1 objects, 1 folders, and no interrupted copy") {
		t.Errorf("into a database in use: %v", err)
	}
	if err := x.Update(ctx, func(tx index.Tx) error { return tx.DeleteTree("theirs") }); err != nil {
		t.Fatal(err)
	}
	x.Close()

	// An interrupted copy after attachd ran on the data directory again.
	cctx, cancel := context.WithCancel(ctx)
	o := node
	o.Batch = 1
	o.Progress = func(p CopyProgress) {
		if p.Done.Objects > 0 {
			cancel()
		}
	}
	if _, err := CopyIndex(cctx, dir, u, o); err == nil {
		t.Fatal("not interrupted")
	}
	later := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(dir, "clean-shutdown"), later, later)
	if _, err := CopyIndex(ctx, dir, u, node); err == nil || !strings.Contains(err.Error(), "attachd has run on") {
		t.Errorf("resumed after attachd ran: %v", err)
	}
	if _, err := CopyIndex(ctx, t.TempDir(), u, node); err == nil || !strings.Contains(err.Error(), "holds no index") {
		t.Errorf("from an empty directory: %v", err)
	}
}

// TestCopyIndexUnreachable: a target that cannot be reached fails at once,
// naming its host and port and not its password.
func TestCopyIndexUnreachable(t *testing.T) {
	dir := copySource(t, 1)
	start := time.Now()
	_, err := CopyIndex(context.Background(), dir, "postgres://attachd:s3cret-pw@127.0.0.1:1/attachd", CopyOptions{Node: "n1"})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "s3cret-pw") ||
		!errors.Is(err, index.ErrUnavailable) {
		t.Fatalf("unreachable target: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s", d)
	}
	// Nor is the password in the record of a copy.
	u := pgtest.Database(t)
	if _, err := CopyIndex(context.Background(), dir, u, CopyOptions{Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	pw, _ := pu.User.Password()
	b, _ := os.ReadFile(filepath.Join(dir, copyStateFile))
	if pw == "" || bytes.Contains(b, []byte(pw)) {
		t.Fatalf("password %q in %s:\n%s", pw, copyStateFile, b)
	}
}
