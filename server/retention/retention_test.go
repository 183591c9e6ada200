package retention

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attachd/attachd/server/store"
)

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90d": 90 * 24 * time.Hour, "12w": 12 * 7 * 24 * time.Hour, "36h": 36 * time.Hour, "1.5d": 36 * time.Hour, "90m": 90 * time.Minute,
	} {
		got, err := ParseAge(in)
		if err != nil || time.Duration(got) != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "90", "-3d", "ninety days", "3y"} {
		if _, err := ParseAge(in); err == nil {
			t.Errorf("ParseAge(%q) accepted", in)
		}
	}
	if s := Age(90 * 24 * time.Hour).String(); s != "90d" {
		t.Errorf("String = %q", s)
	}
}

func TestValidate(t *testing.T) {
	day := Age(24 * time.Hour)
	for _, tc := range []struct {
		rules []Rule
		holds []Hold
		want  string // "" = valid
	}{
		{[]Rule{{Prefix: "/", MaxAge: day}}, []Hold{{Prefix: "/a/b/"}}, ""},
		{[]Rule{{Prefix: "a/", MaxAge: day}}, nil, "retention.prefix: [[retention]] 1: want a path starting with '/'"},
		{[]Rule{{Prefix: "/", MaxAge: day}, {Prefix: "/x", MaxAge: 0}}, nil, "retention.max_age: [[retention]] 2"},
		{[]Rule{{Prefix: "/", MaxAge: day, Match: Match{DocType: "voicemail"}}}, nil, "retention.match: [[retention]] 1: doc_type"},
		{[]Rule{{Prefix: "/", MaxAge: day, Match: Match{ContentType: "audio[/"}}}, nil, "content_type"},
		{[]Rule{{Prefix: "/a", MaxAge: day}, {Prefix: "/a/", MaxAge: 2 * day}}, nil, "the same prefix and match as [[retention]] 1"},
		{[]Rule{{Prefix: "/a/%2e%2e/", MaxAge: day}}, nil, "retention.prefix"},
		{nil, []Hold{{Prefix: ""}}, "hold.prefix: [[hold]] 1"},
	} {
		err := Validate(tc.rules, tc.holds)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.rules, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v %+v: got %v, want %q", tc.rules, tc.holds, err, tc.want)
		}
		var fe *FieldError
		if err != nil && !errors.As(err, &fe) {
			t.Errorf("%v is not a FieldError", err)
		}
	}
}

// gregorian is t in Kazoo's Gregorian seconds.
func gregorian(t time.Time) int64 { return t.Unix() + 62167219200 }

func TestDecidePrecedence(t *testing.T) {
	day := Age(24 * time.Hour)
	p, err := NewPolicy([]Rule{
		{Prefix: "/", MaxAge: 365 * day},                                                         // 0
		{Prefix: "/acc/", MaxAge: 90 * day},                                                      // 1
		{Prefix: "/acc", MaxAge: 30 * day, Match: Match{DocType: "mailbox_message"}},             // 2
		{Prefix: "/acc", MaxAge: 10 * day, Match: Match{DocType: "fax", ContentType: "image/*"}}, // 3
		{Prefix: "/acc/vip", MaxAge: 1000 * day},                                                 // 4
	}, []Hold{{Prefix: "/acc/vip/case-1"}})
	if err != nil {
		t.Fatal(err)
	}
	vm := []byte(`{"document":{"metadata":{"mailbox":"1001","folder":"new"}}}`)
	for _, tc := range []struct {
		o          store.Object
		rule, held int
	}{
		{store.Object{Key: "other/x.mp3"}, 0, -1},
		{store.Object{Key: "acc/x.mp3"}, 1, -1},
		{store.Object{Key: "accx/x.mp3"}, 0, -1}, // segments, not bytes
		{store.Object{Key: "acc/vm.mp3", Meta: vm}, 2, -1},
		{store.Object{Key: "acc/received_file_1.tiff", ContentType: "image/tiff"}, 3, -1},
		{store.Object{Key: "acc/received_file_1.pdf", ContentType: "application/pdf"}, 1, -1},
		{store.Object{Key: "acc/vip/vm.mp3", Meta: vm}, 4, -1}, // longest prefix beats a match
		{store.Object{Key: "acc/vip/case-1/a.mp3"}, 4, 0},
	} {
		v := p.Decide(tc.o)
		if v.Rule != tc.rule || v.Held != tc.held {
			t.Errorf("%s: rule %d held %d; want %d, %d", tc.o.Key, v.Rule, v.Held, tc.rule, tc.held)
		}
	}
	if (&Policy{}).Decide(store.Object{Key: "a"}).Expired(time.Now().Add(1e6 * time.Hour)) {
		t.Error("no rule, yet expired")
	}
}

func TestDocType(t *testing.T) {
	for _, tc := range []struct {
		o    store.Object
		want string
	}{
		{store.Object{Key: "a/call_recording_abc.mp3"}, "call_recording"},
		{store.Object{Key: "a/x.mp3", Meta: []byte(`{"store_query":{"recording_id":"r1"}}`)}, "call_recording"},
		{store.Object{Key: "a/received_file_202601-ab.tiff"}, "fax"},
		{store.Object{Key: "a/x.mp3", Meta: []byte(`{"document":{"source_type":"voicemail"}}`)}, "mailbox_message"},
		{store.Object{Key: "a/x.mp3", Meta: []byte(`{"fetch_query":{"folder":"saved"}}`)}, "mailbox_message"},
		{store.Object{Key: "a/x.mp3"}, ""},
	} {
		if got := DocType(tc.o); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.o.Key, tc.o.Meta, got, tc.want)
		}
	}
}

// TestPlanAndRun stores objects of various ages (by their Kazoo timestamps,
// or their store time seen from a clock moved on), plans, runs, and finds
// the expired ones gone, the held and young ones kept, and one
// attachment.deleted delivery with the reason "retention" per delete.
func TestPlanAndRun(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(t.TempDir(), store.Options{Sinks: []string{"hook:t"}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	put := func(key string, age time.Duration, size int) {
		t.Helper()
		info := store.Info{Size: -1, ContentType: "audio/mpeg"}
		if age > 0 {
			info.Meta = []byte(fmt.Sprintf(`{"document":{"metadata":{"timestamp":%d,"mailbox":"1"}}}`, gregorian(now.Add(-age))))
		}
		if _, err := st.Put(ctx, key, strings.NewReader(strings.Repeat("x", size)), info); err != nil {
			t.Fatal(err)
		}
	}
	day := 24 * time.Hour
	put("acc/old1.mp3", 100*day, 10)
	put("acc/old2.mp3", 200*day, 20)
	put("acc/young.mp3", 10*day, 30)
	put("acc/nostamp.mp3", 0, 40) // stored now: young by its store time
	put("acc/held/old.mp3", 300*day, 50)
	put("free/old.mp3", 1000*day, 60) // no rule
	p, err := NewPolicy([]Rule{{Prefix: "/acc/", MaxAge: Age(90 * day)}}, []Hold{{Prefix: "/acc/held"}})
	if err != nil {
		t.Fatal(err)
	}
	var would []string
	rep, err := p.Plan(ctx, st, now, func(o store.Object, _ Verdict) { would = append(would, o.Key) })
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Rules[0]
	if r.Count != 2 || r.Bytes != 30 || r.Oldest != "acc/old2.mp3" || r.Newest != "acc/old1.mp3" || rep.Held != 1 || rep.Scanned != 6 {
		t.Fatalf("plan: %+v %+v", rep, r)
	}
	// Drain the created deliveries.
	if ds, err := st.ClaimDeliveries(ctx, "hook:t", 100, time.Hour); err != nil || len(ds) != 6 {
		t.Fatalf("claim: %d, %v", len(ds), err)
	} else {
		var outs []store.Outcome
		for _, d := range ds {
			outs = append(outs, store.Outcome{ID: d.ID, Done: true})
		}
		st.FinishDeliveries(ctx, outs)
	}
	start := time.Now()
	rep, err = p.Run(ctx, st, func() time.Time { return now }, 20, nil)
	if err != nil || rep.Deleted() != 2 || rep.Errors != 0 {
		t.Fatalf("run: %+v, %v", rep, err)
	}
	if took := time.Since(start); took < 40*time.Millisecond {
		t.Errorf("2 deletes at 20/s took %v: not rate-limited", took)
	}
	for _, k := range []string{"acc/old1.mp3", "acc/old2.mp3"} {
		if _, err := st.Stat(ctx, k); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v, want deleted", k, err)
		}
	}
	for _, k := range []string{"acc/young.mp3", "acc/nostamp.mp3", "acc/held/old.mp3", "free/old.mp3"} {
		if _, err := st.Stat(ctx, k); err != nil {
			t.Errorf("%s: %v, want kept", k, err)
		}
	}
	ds, err := st.ClaimDeliveries(ctx, "hook:t", 100, time.Hour)
	if err != nil || len(ds) != 2 {
		t.Fatalf("claim after run: %d, %v", len(ds), err)
	}
	for _, d := range ds {
		if d.Type != store.ChangeDeleted || d.Reason != Reason {
			t.Errorf("delivery %s %s reason %q", d.Type, d.Key, d.Reason)
		}
	}
	// A clock 100 days on: the object without a timestamp is now old by its store time.
	later := now.Add(100 * day)
	rep, err = p.Run(ctx, st, func() time.Time { return later }, 0, nil)
	if err != nil || rep.Deleted() != 2 || rep.Held != 1 { // young (10+100 days) and nostamp
		t.Fatalf("run later: %+v, %v", rep, err)
	}
}

// TestSweeper runs the sweeper in the background and sees it delete.
func TestSweeper(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Put(ctx, "a/x", strings.NewReader("x"), store.Info{Size: -1}); err != nil {
		t.Fatal(err)
	}
	p, _ := NewPolicy([]Rule{{Prefix: "/a", MaxAge: Age(time.Hour)}}, nil)
	swept := make(chan Report, 10)
	s := &Sweeper{Policy: p, Store: st, Sweep: Sweep{Interval: Age(10 * time.Millisecond)},
		Now: func() time.Time { return time.Now().Add(2 * time.Hour) }, Swept: func(r Report, _ error) { swept <- r }}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	select {
	case r := <-swept:
		if r.Deleted() != 1 {
			t.Fatalf("swept %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no sweep")
	}
	cancel()
	<-done
}

// TestSweeperLease: a sweeper that does not get the lease does not sweep; one
// that does releases it after its sweep.
func TestSweeperLease(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Put(ctx, "a/x", strings.NewReader("x"), store.Info{Size: -1}); err != nil {
		t.Fatal(err)
	}
	p, _ := NewPolicy([]Rule{{Prefix: "/a", MaxAge: Age(time.Hour)}}, nil)
	var asked, released atomic.Int32
	granted := atomic.Bool{}
	swept := make(chan Report, 10)
	s := &Sweeper{Policy: p, Store: st, Sweep: Sweep{Interval: Age(10 * time.Millisecond)},
		Now: func() time.Time { return time.Now().Add(2 * time.Hour) },
		Lease: func(context.Context) (func(), bool) {
			asked.Add(1)
			return func() { released.Add(1) }, granted.Load()
		},
		Swept: func(r Report, _ error) { swept <- r }}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	for asked.Load() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := st.Stat(ctx, "a/x"); err != nil || len(swept) != 0 {
		t.Fatalf("swept without the lease: %v, %d sweeps", err, len(swept))
	}
	granted.Store(true)
	if r := <-swept; r.Deleted() != 1 {
		t.Fatalf("swept %+v", r)
	}
	cancel()
	<-done
	if released.Load() == 0 {
		t.Fatal("lease never released")
	}
}

// TestPropertyHold: the legal-hold property on an object or on a folder
// above it keeps the object, in plan and in run; removed, it no longer does.
func TestPropertyHold(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, k := range []string{"acc/case/a.mp3", "acc/b.mp3", "acc/c.mp3"} {
		if _, err := st.Put(ctx, k, strings.NewReader("voice"), store.Info{Size: -1}); err != nil {
			t.Fatal(err)
		}
	}
	hold := []byte(`[{"ns":"` + PropNS + `","name":"` + PropHold + `","xml":"case 42"}]`)
	if _, err := st.UpdateDir(ctx, "acc/case", func(d *store.Dir) bool { d.Props = hold; return true }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, "acc/b.mp3", func(o *store.Object) bool { o.Props = hold; return true }); err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy([]Rule{{Prefix: "/acc/", MaxAge: Age(24 * time.Hour)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(48 * time.Hour)
	var would []string
	rep, err := p.Plan(ctx, st, later, func(o store.Object, _ Verdict) { would = append(would, o.Key) })
	if err != nil || rep.Held != 2 || fmt.Sprint(would) != "[acc/c.mp3]" {
		t.Fatalf("plan: held %d, would delete %q, %v", rep.Held, would, err)
	}
	rep, err = p.Run(ctx, st, func() time.Time { return later }, 0, nil)
	if err != nil || rep.Deleted() != 1 {
		t.Fatalf("run: %+v, %v", rep, err)
	}
	if _, err := st.Stat(ctx, "acc/case/a.mp3"); err != nil {
		t.Errorf("held by its folder, yet: %v", err)
	}
	if _, err := st.UpdateDir(ctx, "acc/case", func(d *store.Dir) bool { d.Props = nil; return true }); err != nil {
		t.Fatal(err)
	}
	if rep, err := p.Run(ctx, st, func() time.Time { return later }, 0, nil); err != nil || rep.Deleted() != 1 || rep.Held != 1 {
		t.Fatalf("run after the folder's hold was removed: %+v, %v", rep, err)
	}
	if _, err := st.Stat(ctx, "acc/b.mp3"); err != nil {
		t.Errorf("held by its own property, yet: %v", err)
	}
}

// TestSweeperSet: a sweeper started without rules sweeps once Set gives it
// some, and stops when Set takes them away (a reload).
func TestSweeperSet(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, k := range []string{"a/x", "b/x"} {
		if _, err := st.Put(ctx, k, strings.NewReader("x"), store.Info{Size: -1}); err != nil {
			t.Fatal(err)
		}
	}
	swept := make(chan Report, 100)
	s := &Sweeper{Store: st, Sweep: Sweep{Interval: Age(10 * time.Millisecond)},
		Now: func() time.Time { return time.Now().Add(2 * time.Hour) }, Swept: func(r Report, _ error) { swept <- r }}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond)
	if len(swept) != 0 {
		t.Fatal("a sweeper without rules swept")
	}
	p, _ := NewPolicy([]Rule{{Prefix: "/a", MaxAge: Age(time.Hour)}}, nil)
	s.Set(p, Sweep{Interval: Age(10 * time.Millisecond)})
	select {
	case r := <-swept:
		if r.Deleted() != 1 {
			t.Fatalf("swept %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no sweep after Set")
	}
	if _, err := st.Stat(ctx, "b/x"); err != nil {
		t.Fatalf("b/x, under no rule: %v", err)
	}
	s.Set(nil, Sweep{})
	time.Sleep(50 * time.Millisecond) // a sweep in progress ends
	for len(swept) > 0 {
		<-swept
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(swept); n != 0 {
		t.Errorf("%d sweeps after the rules were taken away", n)
	}
	cancel()
	<-done
}
