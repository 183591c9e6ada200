package dav

import (
	"testing"
	"time"

	"github.com/attachd/attachd/server/store"
)

func TestSafeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Alice", "Alice"},
		{`a/b\c:d*e?f"g<h>i|j`, "a_b_c_d_e_f_g_h_i_j"},
		{"trailing dots...", "trailing dots"},
		{"  spaced  ", "spaced"},
		{"tab\there", "tab_here"},
		{"", "_"},
		{"...", "_"},
		{"CON", "_CON"},
		{"nul.mp3", "_nul.mp3"},
		{"Conrad", "Conrad"},
		{"ünïcödé ☎", "ünïcödé ☎"},
	}
	for _, tt := range tests {
		if got := safeName(tt.in, 60); got != tt.want {
			t.Errorf("safeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := safeName("abcdefghij", 4); got != "abcd" {
		t.Errorf("safeName cut to 4 = %q", got)
	}
}

func TestDedupe(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	es := dedupe([]viewEntry{
		{name: "x.mp3", at: at, obj: store.Object{Key: "b"}},
		{name: "X.mp3", at: at, obj: store.Object{Key: "a"}},
		{name: "x.mp3", at: at.Add(time.Second), obj: store.Object{Key: "c"}},
		{name: "x (2).mp3", at: at.Add(2 * time.Second), obj: store.Object{Key: "d"}},
	})
	want := map[string]string{"a": "X.mp3", "b": "x (2).mp3", "c": "x (3).mp3", "d": "x (2) (2).mp3"}
	seen := map[string]bool{}
	for _, e := range es {
		if e.name != want[e.obj.Key] {
			t.Errorf("%s named %q, want %q", e.obj.Key, e.name, want[e.obj.Key])
		}
		if seen[e.name] {
			t.Errorf("name %q twice", e.name)
		}
		seen[e.name] = true
	}
}
