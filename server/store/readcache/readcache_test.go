package readcache

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func blob(n int) ([]byte, string) {
	b := make([]byte, n)
	rand.Read(b)
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

func name(i int) string { return fmt.Sprintf("%032x", i+1) }

// fill copies b into the cache as the blob name, in chunks as a read would.
func fill(t *testing.T, c *Cache, name string, b []byte, sum string) {
	t.Helper()
	w := c.Fill(name, int64(len(b)), sum)
	if w == nil {
		t.Fatalf("Fill(%s) = nil", name)
	}
	for p := b; len(p) > 0; p = p[min(len(p), 7000):] {
		if err := w.Write(p[:min(len(p), 7000)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, c *Cache, name string) ([]byte, bool) {
	t.Helper()
	f, ok := c.Open(name)
	if !ok {
		return nil, false
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

func open(t *testing.T, dir string, max int64) *Cache {
	t.Helper()
	c, err := Open(dir, max, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFillKeepsOnlyWholeVerifiedCopies(t *testing.T) {
	c := open(t, t.TempDir(), 64<<20)
	b, sum := blob(300 << 10)

	fill(t, c, name(0), b, sum)
	if got, ok := read(t, c, name(0)); !ok || !bytes.Equal(got, b) {
		t.Fatalf("read back %d bytes, ok %v", len(got), ok)
	}
	if c.Fill(name(0), int64(len(b)), sum) != nil {
		t.Fatal("a second copy of a blob held was started")
	}

	// Bytes that do not hash to the blob's SHA-256 are not kept.
	bad := slices.Clone(b)
	bad[1000] ^= 1
	w := c.Fill(name(1), int64(len(bad)), sum)
	if err := w.Write(bad); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(); err == nil {
		t.Fatal("a copy that does not hash to its blob's SHA-256 was kept")
	}
	// Nor are a copy cut short, or one longer than the blob.
	w = c.Fill(name(2), int64(len(b)), sum)
	w.Write(b[:1000])
	if err := w.Finish(); err == nil {
		t.Fatal("a copy of 1000 of its bytes was kept")
	}
	w = c.Fill(name(3), 10, sum)
	if err := w.Write(b[:11]); err == nil {
		t.Fatal("a copy took 11 bytes of a 10-byte blob")
	}
	// An abandoned copy leaves nothing, and may be started again.
	w = c.Fill(name(4), int64(len(b)), sum)
	if c.Fill(name(4), int64(len(b)), sum) != nil {
		t.Fatal("two copies of one blob were filled at once")
	}
	w.Write(b[:5])
	w.Abort()
	if w := c.Fill(name(4), int64(len(b)), sum); w == nil {
		t.Fatal("an abandoned copy cannot be started again")
	} else {
		w.Abort()
	}

	for i := 1; i <= 4; i++ {
		if _, ok := read(t, c, name(i)); ok {
			t.Errorf("copy %d is held", i)
		}
	}
	if des, _ := os.ReadDir(c.dir); len(des) != 2 { // the state file and one copy
		t.Errorf("cache directory holds %d entries, want 2", len(des))
	}
	st := c.Stats()
	if st.Copies != 1 || st.Fills != 1 || st.Hits != 1 || st.Misses != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestBoundEvictsLeastRecentlyRead(t *testing.T) {
	const size = 100 << 10
	c := open(t, t.TempDir(), 8*size) // 8 copies
	var sums []string
	var bodies [][]byte
	for i := range 10 {
		b, sum := blob(size)
		bodies, sums = append(bodies, b), append(sums, sum)
		fill(t, c, name(i), b, sum)
		if i == 5 {
			read(t, c, name(0)) // 0 is read again: 1 and 2 are now the oldest
		}
	}
	for i, want := range []bool{true, false, false, true, true, true, true, true, true, true} {
		if got, ok := read(t, c, name(i)); ok != want || (ok && !bytes.Equal(got, bodies[i])) {
			t.Errorf("copy %d held %v, want %v", i, ok, want)
		}
	}
	if st := c.Stats(); st.Bytes > st.Max || st.Copies != 8 || st.Evictions != 2 {
		t.Errorf("stats %+v", st)
	}
	// One copy may take an eighth of the cache at most.
	if c.Fill(name(20), 8*size/8+1, sums[0]) != nil {
		t.Error("a copy of more than an eighth of the cache was started")
	}
	// Small copies count as MinCost: the number of copies stays bounded.
	for i := range 20 {
		b, sum := blob(10)
		fill(t, c, name(100+i), b, sum)
	}
	if st := c.Stats(); st.Copies > int(st.Max/MinCost) || st.Bytes > st.Max {
		t.Errorf("stats after small copies %+v", st)
	}
}

func TestAdoptAndRemove(t *testing.T) {
	dir := t.TempDir()
	c := open(t, filepath.Join(dir, "cache"), 64<<20)
	b, _ := blob(1000)
	spooled := filepath.Join(dir, "spooled")
	os.WriteFile(spooled, b, 0o600)
	if !c.Adopt(name(0), spooled, int64(len(b))) {
		t.Fatal("not adopted")
	}
	if _, err := os.Stat(spooled); !os.IsNotExist(err) {
		t.Fatalf("the adopted file is still at its path: %v", err)
	}
	f, ok := c.Open(name(0)) // a reader that opened the copy reads on after Remove
	if !ok {
		t.Fatal("adopted copy not held")
	}
	defer f.Close()
	c.Remove(name(0))
	if _, ok := c.Open(name(0)); ok {
		t.Fatal("removed copy still held")
	}
	if got, _ := io.ReadAll(f); !bytes.Equal(got, b) {
		t.Fatal("an open copy was cut short by Remove")
	}
	if _, err := os.Stat(filepath.Join(dir, "cache", name(0))); !os.IsNotExist(err) {
		t.Fatalf("removed copy still on disk: %v", err)
	}
	if c.Adopt("../x", spooled, 1) || c.Adopt(name(1), filepath.Join(dir, "missing"), 1) {
		t.Fatal("adopted a bad name or a missing file")
	}
}

// TestReopen: copies survive a restart, cleanly closed or not, within one
// boot of the machine; after another boot, only a clean close keeps them.
func TestReopen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state func(dir string) // what the directory says after the first run
		keeps bool
	}{
		{"closed", nil, true},
		{"killed in this boot", func(dir string) {}, true},
		{"killed in another boot", func(dir string) { os.WriteFile(filepath.Join(dir, stateFile), []byte("another-boot"), 0o600) }, false},
		{"state lost", func(dir string) { os.Remove(filepath.Join(dir, stateFile)) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := open(t, dir, 64<<20)
			b, sum := blob(5000)
			fill(t, c, name(0), b, sum)
			leftover, _ := os.CreateTemp(dir, ".fill-*") // a copy being filled when the process died
			leftover.Close()
			if tc.state == nil {
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				tc.state(dir)
			}
			c = open(t, dir, 64<<20)
			got, ok := read(t, c, name(0))
			if ok != tc.keeps || (ok && !bytes.Equal(got, b)) {
				t.Fatalf("copy held %v after reopening, want %v", ok, tc.keeps)
			}
			if _, err := os.Stat(leftover.Name()); !os.IsNotExist(err) {
				t.Fatalf("a half-filled copy was left: %v", err)
			}
			if state, _ := os.ReadFile(filepath.Join(dir, stateFile)); string(state) == "clean" {
				t.Fatal("an open cache says it was closed cleanly")
			}
		})
	}
}

func TestOpenRefusesNoRoom(t *testing.T) {
	if _, err := Open(t.TempDir(), 0, nil); err == nil {
		t.Fatal("a cache of 0 bytes opened")
	}
}

// TestFillWithoutBytes: an empty blob is kept as an empty copy, and a reader
// that reads nothing (a HEAD) leaves no file behind.
func TestFillWithoutBytes(t *testing.T) {
	c := open(t, t.TempDir(), 64<<20)
	_, sum := blob(0)
	w := c.Fill(name(0), 0, sum)
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if got, ok := read(t, c, name(0)); !ok || len(got) != 0 {
		t.Fatalf("empty copy: held %v, %d bytes", ok, len(got))
	}
	b, sum := blob(5000)
	c.Fill(name(1), int64(len(b)), sum).Abort()
	if des, _ := os.ReadDir(c.dir); len(des) != 2 { // the state file and the empty copy
		t.Errorf("cache directory holds %d entries, want 2", len(des))
	}
}

// TestFillsInFlightAreBounded: copies being filled reserve their size, up to
// half the bound, so slow readers cannot take the disk beyond 1.5× of it.
func TestFillsInFlightAreBounded(t *testing.T) {
	const size = 100 << 10
	c := open(t, t.TempDir(), 8*size)
	var ws []*Filler
	for i := range 5 {
		_, sum := blob(size)
		w := c.Fill(name(i), size, sum)
		if (w != nil) != (i < 4) {
			t.Fatalf("fill %d started: %v, want %v (four of an eighth each make half)", i, w != nil, i < 4)
		}
		if w != nil {
			ws = append(ws, w)
		}
	}
	ws[0].Abort()
	_, sum := blob(size)
	if w := c.Fill(name(5), size, sum); w == nil {
		t.Fatal("no fill started after one was abandoned")
	}
}

// TestCloseKeepsNoMore: a copy finished after Close is not kept, and no
// copy starts: the directory already says it was closed cleanly.
func TestCloseKeepsNoMore(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir, 64<<20)
	b, sum := blob(5000)
	w := c.Fill(name(0), int64(len(b)), sum)
	w.Write(b)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(); err == nil {
		t.Fatal("a copy finished after Close was kept")
	}
	if c.Fill(name(1), int64(len(b)), sum) != nil {
		t.Fatal("a copy started after Close")
	}
	if state, _ := os.ReadFile(filepath.Join(dir, stateFile)); string(state) != "clean" {
		t.Fatalf("state after Close: %q", state)
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Fatalf("%d entries after Close, want only the state file", len(des))
	}
}
