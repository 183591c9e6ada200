package pg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attachd/attachd/server/index"
	"github.com/attachd/attachd/server/index/indextest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const urlEnv = "ATTACHD_TEST_PG_URL"

// The tests run in a database of their own, made for this run and dropped
// after it (another package's tests may share the server: LISTEN channels
// are per database), each index in a fresh schema of it.
var (
	testDBOnce sync.Once
	testDBURL  string // the run's database
	testDBErr  error
	testDBDrop func()
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if testDBDrop != nil {
		testDBDrop()
	}
	os.Exit(code)
}

func randomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// withParams returns rawURL with its database set (if db is not "") and the
// query parameters params added.
func withParams(t testing.TB, rawURL, db string, params map[string]string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("%s is no URL: %v", urlEnv, err)
	}
	if db != "" {
		u.Path = "/" + db
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// database returns the URL of the run's database, made on first use.
func database(t testing.TB) string {
	base := os.Getenv(urlEnv)
	if base == "" {
		if testing.Short() {
			t.Skip(urlEnv + " is not set (-short)")
		}
		t.Fatal(urlEnv + " is not set: start a PostgreSQL with `.ci/postgres.sh start DIR && . DIR/env` (./test.sh does), or run with -short")
	}
	testDBOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			testDBErr = fmt.Errorf("connect to %s: %w", Redact(base), err)
			return
		}
		defer c.Close(ctx)
		name := randomName("attachd_test_")
		if _, err := c.Exec(ctx, `CREATE DATABASE `+name); err != nil {
			// No CREATEDB: share the database, in schemas of our own.
			fmt.Fprintf(os.Stderr, "pg tests: cannot create a database (%v); using %s\n", err, Redact(base))
			testDBURL = base
			return
		}
		testDBURL = withParams(t, base, name, nil)
		testDBDrop = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := pgx.Connect(ctx, base)
			if err != nil {
				fmt.Fprintf(os.Stderr, "pg tests: drop database %s: %v\n", name, err)
				return
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
				fmt.Fprintf(os.Stderr, "pg tests: drop database %s: %v\n", name, err)
			}
		}
	})
	if testDBErr != nil {
		t.Fatal(testDBErr)
	}
	return testDBURL
}

// freshSchema makes an empty schema, dropped when t ends, and returns the
// URL whose search_path names it.
func freshSchema(t testing.TB) string {
	dbURL := database(t)
	name := randomName("s_")
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE SCHEMA `+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA `+name+` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return withParams(t, dbURL, "", map[string]string{"search_path": name})
}

func mustOpen(t testing.TB, u string) *DB {
	t.Helper()
	x, err := Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// openPair opens two handles on one fresh schema: two nodes.
func openPair(t *testing.T) (*DB, *DB) {
	u := freshSchema(t)
	a, b := mustOpen(t, u), mustOpen(t, u)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestConformance(t *testing.T) {
	database(t) // one skip or failure, not one per case
	indextest.Run(t, func(t *testing.T) index.Index { return mustOpen(t, freshSchema(t)) })
}

// TestTrackedUsageIsOneRow: Usage of a folder TrackUsage names reads its
// row of attachd_folder_usage, not the objects below it (the conformance
// suite checks that the triggers keep the row right), inside a transaction
// too; another handle (a node) sees the row; a folder no longer named is
// summed again; the triggers exist only while a folder is kept.
func TestTrackedUsageIsOneRow(t *testing.T) {
	ctx := context.Background()
	x, y := openPair(t)
	if err := x.Update(ctx, func(tx index.Tx) error {
		return tx.PutObject(index.Object{Key: "q/a", Blob: "b", Size: 5})
	}); err != nil {
		t.Fatal(err)
	}
	triggers := func() (n int) {
		t.Helper()
		if err := x.pool.QueryRow(ctx, `SELECT count(*) FROM pg_trigger
			WHERE tgrelid = 'attachd_objects'::regclass AND NOT tgisinternal`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := triggers(); n != 0 {
		t.Fatalf("%d triggers before any folder is kept: every store would pay for them", n)
	}
	if err := x.TrackUsage(ctx, []string{"q"}); err != nil {
		t.Fatal(err)
	}
	if err := y.TrackUsage(ctx, []string{"q"}); err != nil { // a second node, the same folders
		t.Fatal(err)
	}
	if n := triggers(); n != len(usageTriggers) {
		t.Fatalf("%d triggers while a folder is kept, want %d", n, len(usageTriggers))
	}
	// A row that disagrees with the objects shows whether Usage reads it.
	if _, err := x.pool.Exec(ctx, `UPDATE attachd_folder_usage SET bytes = 7 WHERE prefix = 'q'`); err != nil {
		t.Fatal(err)
	}
	if b, n, err := y.Usage(ctx, "q"); err != nil || b != 7 || n != 1 {
		t.Fatalf("Usage(q) on the other handle = %d, %d, %v; want the row's 7, 1", b, n, err)
	}
	if err := y.Update(ctx, func(tx index.Tx) error {
		if err := tx.PutObject(index.Object{Key: "q/b", Blob: "c", Size: 3}); err != nil {
			return err
		}
		if b, n, err := tx.KeptUsage("q"); err != nil || b != 10 || n != 2 {
			t.Errorf("KeptUsage(q) after a put = %d, %d, %v; want the row's 7 + 3, 2", b, n, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := y.TrackUsage(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if b, n, err := x.Usage(ctx, "q"); err != nil || b != 8 || n != 2 {
		t.Fatalf("Usage(q) untracked = %d, %d, %v; want the objects' 8, 2", b, n, err)
	}
	if n := triggers(); n != 0 {
		t.Fatalf("%d triggers with no folder kept", n)
	}
}

// TestDeferredFailureFailsTheTransaction: an Enqueue goes out with the next
// statement or with COMMIT (tx.later); if PostgreSQL refuses it there, the
// transaction fails as a whole and nothing of it is kept. So does one whose
// first query, sent in one batch with BEGIN, fails.
func TestDeferredFailureFailsTheTransaction(t *testing.T) {
	ctx := context.Background()
	x := mustOpen(t, freshSchema(t))
	t.Cleanup(func() { x.Close() })
	bad := index.Delivery{Sink: "bad\x00sink", Type: index.ChangeCreated, Key: "k", Occurred: t0}
	for _, tc := range []struct {
		name string
		fn   func(tx index.Tx) error
	}{
		{"with COMMIT", func(tx index.Tx) error {
			if err := tx.PutObject(index.Object{Key: "a", Blob: "b", Size: 1}); err != nil {
				return err
			}
			return tx.Enqueue(bad)
		}},
		{"with the next statement", func(tx index.Tx) error {
			if err := tx.Enqueue(bad); err != nil {
				return err
			}
			return tx.PutObject(index.Object{Key: "a", Blob: "b", Size: 1})
		}},
	} {
		if err := x.Update(ctx, tc.fn); err == nil {
			t.Errorf("%s: a transaction whose delivery PostgreSQL refused committed", tc.name)
		}
		if _, err := x.Get(ctx, "a"); !errors.Is(err, index.ErrNotFound) {
			t.Errorf("%s: the object of a failed transaction: %v, want ErrNotFound", tc.name, err)
		}
	}
	// A query that fails as the first statement, sent with BEGIN and the
	// bump in one batch, fails its transaction the same way.
	if err := x.Update(ctx, func(tx index.Tx) error {
		if _, err := tx.Get("bad\x00key"); err == nil {
			t.Error("Get of a key PostgreSQL cannot hold succeeded")
		}
		return tx.PutObject(index.Object{Key: "a", Blob: "b", Size: 1})
	}); err == nil {
		t.Error("a transaction whose first query failed committed")
	}
	if _, err := x.Get(ctx, "a"); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("the object of a transaction whose first query failed: %v, want ErrNotFound", err)
	}
	// The connection is usable again, and a good delivery goes with COMMIT.
	if err := x.Update(ctx, func(tx index.Tx) error {
		return tx.Enqueue(index.Delivery{Sink: "good", Type: index.ChangeCreated, Key: "k", Occurred: t0})
	}); err != nil {
		t.Fatal(err)
	}
	if ds, err := x.Claim(ctx, "good", 10, time.Minute, t0.Add(time.Hour)); err != nil || len(ds) != 1 {
		t.Fatalf("claimed %d deliveries, %v; want the one queued alone", len(ds), err)
	}
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func lock(token, root string) index.Lock {
	return index.Lock{Token: token, Root: root, User: "u", Created: t0, Expires: t0.Add(time.Minute)}
}

func TestLockConflictAcrossHandles(t *testing.T) {
	a, b := openPair(t)
	ctx := context.Background()
	if err := a.CreateLock(ctx, lock("a1", "x"), t0); err != nil {
		t.Fatal(err)
	}
	var le *index.LockedError
	if err := b.CreateLock(ctx, lock("b1", "x/y"), t0); !errors.As(err, &le) || le.Held.Token != "a1" {
		t.Fatalf("lock below another node's: got %v, want a LockedError naming a1", err)
	}
	// Many tries at once, from both: exactly one wins each root.
	for round := range 5 {
		root := fmt.Sprintf("r%d", round)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			x := a
			if i%2 == 1 {
				x = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := x.CreateLock(ctx, lock(fmt.Sprintf("%s-%d", root, i), root+strings.Repeat("/c", i%3)), t0)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, index.ErrLocked):
					t.Errorf("CreateLock: %v", err)
				}
			}()
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d conflicting locks taken", round, n)
		}
	}
}

func TestClaimAcrossHandles(t *testing.T) {
	a, b := openPair(t)
	ctx := context.Background()
	const n = 60
	if err := a.Update(ctx, func(tx index.Tx) error {
		for i := range n {
			if err := tx.Enqueue(index.Delivery{Sink: "s", Type: index.ChangeCreated, Key: fmt.Sprint(i), Occurred: t0}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for i := range 6 {
		x := a
		if i%2 == 1 {
			x = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ds, err := x.Claim(ctx, "s", 3, time.Minute, t0)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d distinct deliveries, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("delivery %d claimed %d times while leased", id, c)
		}
	}
	// While the lease runs, the other node gets nothing; after, it gets all.
	if ds, err := b.Claim(ctx, "s", 100, time.Minute, t0.Add(30*time.Second)); err != nil || len(ds) != 0 {
		t.Fatalf("claim during the lease: %d, %v", len(ds), err)
	}
	ds, err := b.Claim(ctx, "s", 100, time.Minute, t0.Add(2*time.Minute))
	if err != nil || len(ds) != n || ds[0].Attempts != 2 {
		t.Fatalf("claim after the lease: %d, %v", len(ds), err)
	}
	for i := 1; i < len(ds); i++ {
		if ds[i].ID <= ds[i-1].ID {
			t.Fatalf("claimed out of order: %d after %d", ds[i].ID, ds[i-1].ID)
		}
	}
}

func TestSubscribeAcrossHandles(t *testing.T) {
	a, b := openPair(t)
	c, cancel := b.Subscribe()
	defer cancel()
	if err := a.Update(context.Background(), func(tx index.Tx) error {
		return tx.Enqueue(index.Delivery{Sink: "s", Type: index.ChangeCreated, Key: "k", Occurred: t0})
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatal("b's subscriber not woken by a's delivery")
	}
}

func TestWatchAcrossHandles(t *testing.T) {
	a, b := openPair(t)
	ctx := context.Background()
	w := b.Watch()
	defer w.Close()
	v1, err := w.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, func(tx index.Tx) error {
		return tx.PutObject(index.Object{Key: "d/o", Blob: "b", Created: t0, Updated: t0, ModTime: t0})
	}); err != nil {
		t.Fatal(err)
	}
	v2, err := w.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v1 == v2 {
		t.Fatalf("version unchanged by another node's commit: %d", v1)
	}
	if o, err := b.Get(ctx, "d/o"); err != nil || o.Blob != "b" {
		t.Fatalf("b sees a's object: %+v, %v", o, err)
	}
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	u := freshSchema(t)
	var wg sync.WaitGroup
	dbs := make([]*DB, 4)
	errs := make([]error, 4)
	for i := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = Open(context.Background(), u)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	var rows, version int
	if err := dbs[0].pool.QueryRow(context.Background(), `SELECT count(*), max(version) FROM attachd_schema`).Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || version != len(migrations) {
		t.Fatalf("attachd_schema: %d rows, version %d; want 1 row, version %d", rows, version, len(migrations))
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	u := freshSchema(t)
	x := mustOpen(t, u)
	if _, err := x.pool.Exec(context.Background(), `UPDATE attachd_schema SET version = 999`); err != nil {
		t.Fatal(err)
	}
	x.Close()
	_, err := Open(context.Background(), u)
	want := fmt.Sprintf("postgres index schema is version 999; this attachd knows up to %d: upgrade attachd", len(migrations))
	if err == nil || err.Error() != want {
		t.Fatalf("open a newer schema: got %v, want %q", err, want)
	}
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://attachd:s3cret@db.example:5432/attachd?sslmode=disable",
			"postgres://attachd:xxxxx@db.example:5432/attachd?sslmode=disable"},
		{"postgresql://u:p%40ss@h/db", "postgresql://u:xxxxx@h/db"},
		{"postgres://u@h/db?password=s3cret", "postgres://u@h/db?password=xxxxx"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"host=h user=u password=s3cret dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password='s3 cret' dbname=d", "host=h password=xxxxx dbname=d"},
		{"postgres://u:s3/c#ret@h1:5432,h2:5432/db", "postgres://u:xxxxx@h1:5432,h2:5432/db"},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// unusedPort returns a loopback port nothing listens on.
func unusedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestOpenUnreachable(t *testing.T) {
	port := unusedPort(t)
	start := time.Now()
	_, err := Open(context.Background(), fmt.Sprintf("postgres://attachd:s3cretpw@127.0.0.1:%d/attachd?sslmode=disable", port))
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("Open took %v to fail", took)
	}
	want := fmt.Sprintf("postgres index at 127.0.0.1:%d: connection refused", port)
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !errors.Is(err, index.ErrUnavailable) {
		t.Errorf("error %v does not match ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "s3cretpw") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	x := &DB{addr: "h:1"}
	if err := x.fail(nil, fmt.Errorf("put: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file"})); !errors.Is(err, index.ErrFull) {
		t.Errorf("disk full: got %v, want ErrFull", err)
	}
	if err := x.fail(nil, &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}); !errors.Is(err, index.ErrUnavailable) {
		t.Errorf("admin shutdown: got %v, want ErrUnavailable", err)
	}
	if err := x.fail(nil, &pgconn.PgError{Code: "23505"}); errors.Is(err, index.ErrUnavailable) || errors.Is(err, index.ErrFull) {
		t.Errorf("unique violation mapped to %v", err)
	}
	if err := x.fail(nil, io.ErrUnexpectedEOF); !errors.Is(err, index.ErrUnavailable) {
		t.Errorf("lost connection: got %v", err)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if err := x.fail(gone, context.Canceled); errors.Is(err, index.ErrUnavailable) {
		t.Errorf("the caller's cancellation mapped to ErrUnavailable")
	}
}

// proxy forwards a loopback port to the PostgreSQL under test, and can cut
// every connection (a server gone) or stop forwarding (a server that no
// longer answers).
type proxy struct {
	target string
	addr   string
	frozen atomic.Bool

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target, conns: map[net.Conn]bool{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[s] = true, true
			p.mu.Unlock()
			go p.pipe(c, s)
			go p.pipe(s, c)
		}
	}()
}

func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for p.frozen.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// cut closes the listener and every connection.
func (p *proxy) cut() {
	p.mu.Lock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	p.frozen.Store(false)
	p.wg.Wait()
}

// restart listens again on the same address.
func (p *proxy) restart(t *testing.T) {
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(l)
}

// viaProxy returns a fresh schema's URL and a proxy in front of its server.
func viaProxy(t *testing.T) (string, *proxy) {
	u, err := url.Parse(freshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.addr
	return u.String(), p
}

func wantUnavailable(t *testing.T, what string, start time.Time, limit time.Duration, err error) {
	t.Helper()
	if !errors.Is(err, index.ErrUnavailable) {
		t.Fatalf("%s: got %v, want ErrUnavailable", what, err)
	}
	if took := time.Since(start); took > limit {
		t.Fatalf("%s took %v to fail", what, took)
	}
}

// TestServerGone: every call fails fast with ErrUnavailable once the
// server's connections are cut; the listener reconnects when it is back,
// and wakes the subscribers.
func TestServerGone(t *testing.T) {
	u, p := viaProxy(t)
	x := mustOpen(t, u)
	defer x.Close()
	ctx := context.Background()
	if err := x.Check(ctx); err != nil {
		t.Fatal(err)
	}
	sub, cancel := x.Subscribe()
	defer cancel()
	p.cut()
	start := time.Now()
	wantUnavailable(t, "Check", start, 3*time.Second, x.Check(ctx))
	_, err := x.Get(ctx, "k")
	wantUnavailable(t, "Get", start, 6*time.Second, err)
	err = x.Update(ctx, func(tx index.Tx) error { return tx.PutObject(index.Object{Key: "k"}) })
	wantUnavailable(t, "Update", start, 12*time.Second, err)
	if !strings.Contains(err.Error(), "postgres index at "+p.addr) {
		t.Errorf("the error does not name the server: %v", err)
	}
	select {
	case <-sub: // a wake-up from before the cut does no harm
	default:
	}
	p.restart(t)
	select {
	case <-sub:
	case <-time.After(15 * time.Second):
		t.Fatal("subscriber not woken after the listener reconnected")
	}
	if err := x.Check(ctx); err != nil {
		t.Fatalf("Check after the server came back: %v", err)
	}
}

// TestServerSilent: a server that stops answering fails Check in its 2 s.
func TestServerSilent(t *testing.T) {
	u, p := viaProxy(t)
	x := mustOpen(t, u)
	defer x.Close()
	ctx := context.Background()
	if err := x.Check(ctx); err != nil {
		t.Fatal(err)
	}
	p.frozen.Store(true)
	start := time.Now()
	wantUnavailable(t, "Check", start, 3*time.Second, x.Check(ctx))
	start = time.Now()
	_, err := x.Get(ctx, "k")
	wantUnavailable(t, "Get", start, 7*time.Second, err)
	// Close does not hang on the silent server either.
	done := make(chan struct{})
	go func() { x.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
}
