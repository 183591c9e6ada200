package kazoo

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// rootSeeds returns the seed inputs of a fuzz target by file name: the files, raw, one
// input each, in testdata/fuzz/<target> at the repository root, where fixtures live
// (Go itself only reads the package's own testdata, in its corpus format).
func rootSeeds(tb testing.TB, target string) map[string][]byte {
	dir := filepath.Join("..", "..", "testdata", "fuzz", target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatalf("seed corpus: %v", err)
	}
	seeds := make(map[string][]byte)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatalf("seed corpus: %v", err)
		}
		seeds[e.Name()] = b
	}
	if len(seeds) < 5 {
		tb.Fatalf("seed corpus %s: %d seeds, want at least 5", dir, len(seeds))
	}
	return seeds
}

// TestMultipartSeeds keeps the round trip in FuzzMultipart from being vacuous: every
// seed but the truncated one parses.
func TestMultipartSeeds(t *testing.T) {
	for name, body := range rootSeeds(t, "FuzzMultipart") {
		parts, err := readParts(bytes.NewReader(body), fuzzBoundary(body), false)
		if strings.HasPrefix(name, "truncated") {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: err = %v, want ErrMalformed", name, err)
			}
			continue
		}
		if err != nil || len(parts) == 0 {
			t.Errorf("%s: %d parts, %v", name, len(parts), err)
		}
	}
}

// fuzzBoundary returns the boundary a sender would have announced for body: what
// follows "--" on the first line that starts with it.
func fuzzBoundary(body []byte) string {
	for line := range bytes.Lines(body) {
		line = bytes.TrimRight(line, "\r\n")
		if b, ok := bytes.CutPrefix(line, []byte("--")); ok && len(b) > 0 {
			return string(bytes.TrimRight(b, " \t"))
		}
	}
	return "B"
}

// encodeKazooStyle lays parsed parts out as Kazoo does (contract §1.1), writing every
// header field. ok is false if the headers cannot be written within the header limit.
func encodeKazooStyle(boundary string, parts []gotPart) (body []byte, ok bool) {
	m := NewMultipartReader(nil, boundary)
	var b bytes.Buffer
	for _, p := range parts {
		b.WriteString("\r\n--" + boundary + "\r\n")
		size := len("\r\n")
		for _, k := range slices.Sorted(maps.Keys(p.Header)) {
			line := k + ": " + p.Header[k]
			if m.isDelimLine([]byte(line)) { // a boundary holding ": " could match
				line = k + ":" + p.Header[k]
			}
			size += len(line) + len("\r\n")
			b.WriteString(line + "\r\n")
		}
		if size > maxHeaderBytes {
			return nil, false
		}
		b.WriteString("\r\n" + p.Body)
	}
	b.WriteString("\r\n--" + boundary + "--")
	return b.Bytes(), true
}

func FuzzMultipart(f *testing.F) {
	for _, s := range rootSeeds(f, "FuzzMultipart") {
		f.Add(s)
	}
	f.Add(kazooBody(kazooBoundary, kazooPart{"D", "application/json", []byte(`{"id":"D"}`)}, kazooPart{"my file (1).mp3", "audio/mpeg", []byte("\r\n--\r")}))
	f.Fuzz(func(t *testing.T, body []byte) {
		boundary := fuzzBoundary(body)
		parts, err := readParts(bytes.NewReader(body), boundary, false)
		// An in-memory body never fails to read: every error is about its syntax.
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error does not wrap ErrMalformed: %v", err)
		}
		if len(parts) > maxParts {
			t.Fatalf("%d parts", len(parts))
		}
		// How the body arrives must not matter.
		parts1, err1 := readParts(iotest.OneByteReader(bytes.NewReader(body)), boundary, true)
		if !reflect.DeepEqual(parts1, parts) || (err == nil) != (err1 == nil) || (err != nil && err.Error() != err1.Error()) {
			t.Fatalf("one byte at a time: %q, %v\nat once: %q, %v", parts1, err1, parts, err)
		}
		if err != nil {
			return
		}
		again, ok := encodeKazooStyle(boundary, parts)
		if !ok {
			return
		}
		parts2, err := readParts(bytes.NewReader(again), boundary, false)
		if err != nil || !reflect.DeepEqual(parts2, parts) {
			t.Fatalf("re-encoded body %q\nparsed as %q, %v\nwant %q", again, parts2, err, parts)
		}
	})
}

func FuzzQuery(f *testing.F) {
	for _, s := range rootSeeds(f, "FuzzQuery") {
		f.Add(string(s))
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ps := ParseQuery(raw)
		if len(ps) > strings.Count(raw, "&")+1 {
			t.Fatalf("%d params from %d pieces", len(ps), strings.Count(raw, "&")+1)
		}
		if _, err := json.Marshal(QueryToJSON(ps)); err != nil {
			t.Fatalf("QueryToJSON result does not marshal: %v", err)
		}
		// Escaping the params again gives them back.
		var enc []string
		for _, p := range ps {
			enc = append(enc, url.QueryEscape(p.Key)+"="+url.QueryEscape(p.Value))
		}
		if again := ParseQuery(strings.Join(enc, "&")); !reflect.DeepEqual(again, ps) {
			t.Fatalf("re-escaped params parse as %q, want %q", again, ps)
		}
		// Where the strict parser accepts the query, both agree.
		if want, err := url.ParseQuery(raw); err == nil {
			got := url.Values{}
			for _, p := range ps {
				got[p.Key] = append(got[p.Key], p.Value)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("ParseQuery gives %q, url.ParseQuery %q", got, want)
			}
		}
	})
}

func FuzzBase64(f *testing.F) {
	for _, s := range rootSeeds(f, "FuzzBase64") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		wantOut, err := base64.StdEncoding.Strict().DecodeString(string(in))
		// The stdlib decoder skips CR and LF even in strict mode; Kazoo never sends them
		// (contract §1.1) and NewBase64Writer rejects them.
		valid := err == nil && !bytes.ContainsAny(in, "\r\n")
		split := 1 + len(in)%7
		for _, sizes := range [][]int{nil, {split}, {split, split, split, 1, 2, 3}, slices.Repeat([]int{1}, len(in))} {
			got, err := decodeWith(in, sizes...)
			switch {
			case valid && err != nil:
				t.Fatalf("writes %v: %v", sizes, err)
			case valid && !bytes.Equal(got, wantOut):
				t.Fatalf("writes %v: got %q, want %q", sizes, got, wantOut)
			case !valid && !errors.Is(err, ErrNotBase64):
				t.Fatalf("writes %v: err = %v, want ErrNotBase64", sizes, err)
			}
		}
		if got := IsBase64Prefix(in, true); got != (valid && len(in) > 0) {
			t.Fatalf("IsBase64Prefix(complete) = %v, valid %v", got, valid)
		}
		if valid && len(in) > 0 {
			for _, n := range []int{1, len(in) / 2, len(in) - 1, len(in)} {
				if n > 0 && !IsBase64Prefix(in[:n], false) {
					t.Fatalf("IsBase64Prefix(%q, false) = false", in[:n])
				}
			}
		}
	})
}
