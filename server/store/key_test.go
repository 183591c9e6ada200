package store

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"/p/A/D/N.mp3", "p/A/D/N.mp3", false},
		{"/p//A///N/", "p/A/N", false},
		{"/", "", false},
		// docs/kazoo.md §5: %2F stays inside its segment (vector 13).
		{"/p/account%2F4e%2F30%2F05310add6229778caf6babfe7cfb-202004/x", "p/account%2F4e%2F30%2F05310add6229778caf6babfe7cfb-202004/x", false},
		// §2, vector 14: raw UTF-8 and %20 decode; %2B and + are a literal plus.
		{"/p/\xc3\xa9.mp3", "p/é.mp3", false},
		{"/p/%C3%A9.mp3", "p/é.mp3", false},
		{"/p/my%20file%2B1.mp3", "p/my file+1.mp3", false},
		{"/p/a+b", "p/a+b", false},
		{"/p/!$()*~", "p/!$()*~", false},
		{"/p/100%25", "p/100%25", false},
		{"/p/\xff.bin", "p/%FF.bin", false},
		{"/p/a%0Ab", "p/a%0Ab", false},
		// Every spelling of a parent reference is refused.
		{"/p/../etc", "", true},
		{"/p/%2e%2e/etc", "", true},
		{"/p/%2E%2e/etc", "", true},
		{"/p/./x", "", true},
		{"/p/a%2F..%2Fb", "", true},
		{"/p/%2F..", "", true},
		{"/p/a\\b", "", true},
		{"/p/a%5Cb", "", true},
		{"/p/a%00b", "", true},
		{"/p/%zz", "", true},
		{"/" + strings.Repeat("a", 256), "", true},
	}
	for _, tt := range tests {
		got, err := CanonicalPath(tt.in)
		if tt.err {
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("CanonicalPath(%q) = %q, %v; want ErrInvalidKey", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CanonicalPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestEscapeSegmentRoundTrip(t *testing.T) {
	for _, seg := range []string{"plain", "é", "a/b", "100%", "x\x01y", "\xff\xfe", "sp ace+plus"} {
		if got := UnescapeSegment(EscapeSegment(seg)); got != seg {
			t.Errorf("UnescapeSegment(EscapeSegment(%q)) = %q", seg, got)
		}
	}
}

func TestParents(t *testing.T) {
	got := strings.Join(Parents("a/b/c/d"), ",")
	if got != "a/b/c,a/b,a" {
		t.Errorf("Parents = %s", got)
	}
}

// FuzzCanonicalPath checks that no input yields a key that leaves the data
// directory or that re-canonicalises differently.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/p/A/D/N.mp3", "/a/%2e%2e/b", "/x%2F..%2Fy", "/\xc3\xa9", "//a//b/", "/a%00", "/a\\b"} {
		f.Add(s)
	}
	addSeeds(f, "FuzzCanonicalPath")
	f.Fuzz(func(t *testing.T, in string) {
		key, err := CanonicalPath(in)
		if err != nil {
			return
		}
		if key == "" {
			return
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00") {
				t.Fatalf("CanonicalPath(%q) = %q: bad segment %q", in, key, seg)
			}
		}
		if !filepath.IsLocal(key) {
			t.Fatalf("CanonicalPath(%q) = %q: not local", in, key)
		}
		// A key, escaped as a URL path, must come back as itself.
		var esc []string
		for _, seg := range strings.Split(key, "/") {
			esc = append(esc, url.PathEscape(UnescapeSegment(seg)))
		}
		again, err := CanonicalPath("/" + strings.Join(esc, "/"))
		if err != nil || again != key {
			t.Fatalf("CanonicalPath(%q) = %q, but its URL form gives %q, %v", in, key, again, err)
		}
	})
}

// addSeeds adds the seed corpus kept in the repository's testdata/fuzz/<name>.
func addSeeds(f *testing.F, name string) {
	dir := filepath.Join("..", "..", "testdata", "fuzz", name)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
			f.Add(string(b))
		}
	}
}
