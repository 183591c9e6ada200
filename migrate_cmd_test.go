package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/attachd/attachd/server/store"
)

// TestMigrateBar: the index copy's bar, with the bytes of attachd migrate:
// their count, rate and the time left reckoned by them.
func TestMigrateBar(t *testing.T) {
	t0 := time.Now()
	p := func(objects, bytes int64) store.CopyProgress {
		return store.CopyProgress{Phase: "objects", Done: store.CopyCounts{Objects: objects, Bytes: bytes},
			Total: store.CopyCounts{Objects: 200, Bytes: 40 << 20}}
	}
	var tty bytes.Buffer
	b := &copyBar{w: &tty, tty: true, start: t0}
	b.show(p(0, 0), t0)
	b.show(p(50, 10<<20), t0.Add(time.Second))
	b.end()
	want := "\r\x1b[K[>                             ] 0/200 objects   0%  0.0 MiB/40.0 MiB" +
		"\r\x1b[K[=======>                      ] 50/200 objects  25%  10.0 MiB/40.0 MiB  10.0 MiB/s  ETA 3s\n"
	if tty.String() != want {
		t.Errorf("terminal:\n%q\nwant\n%q", tty.String(), want)
	}
	var log bytes.Buffer
	b = &copyBar{w: &log, start: t0}
	b.show(p(0, 0), t0)
	b.show(p(100, 30<<20), t0.Add(3*time.Second))
	b.show(p(200, 40<<20), t0.Add(4*time.Second))
	want = "copied 0/200 objects (0%), 0.0 MiB/40.0 MiB\n" +
		"copied 100/200 objects (50%), 30.0 MiB/40.0 MiB, 10.0 MiB/s, ETA 1s\n" +
		"copied 200/200 objects (100%), 40.0 MiB/40.0 MiB, 10.0 MiB/s\n"
	if log.String() != want {
		t.Errorf("log:\n%s\nwant\n%s", log.String(), want)
	}
}
