package kazoo

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	mathrand "math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// base64Cases lists texts and whether NewBase64Writer must accept them.
var base64Cases = []struct {
	in string
	ok bool
}{
	{"", true},
	{"QQ==", true},
	{"QUI=", true},
	{"QUJD", true},
	{"QUJDRA==", true},
	{"AAAA", true},
	{"+/+/", true},
	{base64.StdEncoding.EncodeToString([]byte("some random content: 0123456789abcdef0123456789abcdef")), true},

	{"Q", false},
	{"QQ", false},
	{"QQ=", false},
	{"QUJ", false},
	{"QUJDR", false},
	{"=", false},
	{"====", false},
	{"Q===", false},
	{"Q=Q=", false},
	{"QQ=A", false},
	{"QQ==QQ==", false},
	{"QQ==\r\n", false},
	{"QUJD\r\n", false},
	{"QU\r\nJD", false},
	{"QU JD", false},
	{" QUJD", false},
	{"QUJD\n", false},
	{"QUJD\t", false},
	{"QR==", false}, // non-zero unused bits
	{"QUJ=", false}, // non-zero unused bits
	{"-_-_", false}, // base64url alphabet
	{"QUJD\x00", false},
	{"QUJD=", false},
	{"QUJD====", false},
	{"QUJ\xff", false},
}

// decodeWith writes in to a NewBase64Writer in pieces of the given sizes (the rest at
// once) and returns the output and the first error.
func decodeWith(in []byte, sizes ...int) ([]byte, error) {
	var out bytes.Buffer
	w := NewBase64Writer(&out)
	for _, n := range sizes {
		n = min(n, len(in))
		if _, err := w.Write(in[:n]); err != nil {
			return out.Bytes(), err
		}
		in = in[n:]
	}
	if len(in) > 0 {
		if _, err := w.Write(in); err != nil {
			return out.Bytes(), err
		}
	}
	return out.Bytes(), w.Close()
}

func TestBase64Writer(t *testing.T) {
	for _, tt := range base64Cases {
		in := []byte(tt.in)
		want, _ := base64.StdEncoding.Strict().DecodeString(tt.in)
		check := func(how string, got []byte, err error) {
			t.Helper()
			switch {
			case tt.ok && err != nil:
				t.Errorf("%q %s: %v", tt.in, how, err)
			case tt.ok && !bytes.Equal(got, want):
				t.Errorf("%q %s: got %q, want %q", tt.in, how, got, want)
			case !tt.ok && !errors.Is(err, ErrNotBase64):
				t.Errorf("%q %s: err = %v, want ErrNotBase64", tt.in, how, err)
			}
		}
		got, err := decodeWith(in)
		check("at once", got, err)
		ones := make([]int, len(in))
		for i := range ones {
			ones[i] = 1
		}
		got, err = decodeWith(in, ones...)
		check("byte by byte", got, err)
		for i := range len(in) {
			got, err = decodeWith(in, i)
			check("split", got, err)
		}
	}
}

func TestBase64WriterErrors(t *testing.T) {
	var out bytes.Buffer
	w := NewBase64Writer(&out)
	if _, err := w.Write([]byte("QUJD")); err != nil {
		t.Fatal(err)
	}
	_, err := w.Write([]byte("QU\nJ"))
	if !errors.Is(err, ErrNotBase64) || !strings.Contains(err.Error(), "0x0a at offset 6") {
		t.Fatalf("err = %v", err)
	}
	if _, err2 := w.Write([]byte("QUJD")); err2 != err {
		t.Errorf("error is not sticky: %v", err2)
	}
	if err2 := w.Close(); err2 != err {
		t.Errorf("Close: %v", err2)
	}
	if out.String() != "ABC" {
		t.Errorf("output %q", out.String())
	}

	w = NewBase64Writer(io.Discard)
	w.Write([]byte("QUI="))
	if _, err := w.Write([]byte("QUJD")); !errors.Is(err, ErrNotBase64) || !strings.Contains(err.Error(), "after padding") {
		t.Errorf("data after padding: %v", err)
	}

	w = NewBase64Writer(io.Discard)
	if _, err := w.Write([]byte("QUJDRA")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, ErrNotBase64) || !strings.Contains(err.Error(), "length 6") {
		t.Errorf("short close: %v", err)
	}
	if _, err := w.Write([]byte("==")); err == nil {
		t.Error("write after Close succeeded")
	}

	// Errors of the destination come back as they are, not as ErrNotBase64.
	errDisk := errors.New("disk full")
	w = NewBase64Writer(failWriter{errDisk})
	if _, err := w.Write([]byte("QUJD")); err != errDisk {
		t.Errorf("writer error: %v", err)
	}
	if err := w.Close(); err != errDisk {
		t.Errorf("Close after writer error: %v", err)
	}
	w = NewBase64Writer(shortWriter{})
	if _, err := w.Write([]byte("QUJD")); err != io.ErrShortWrite {
		t.Errorf("short writer: %v", err)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

// TestBase64WriterLarge streams 16 MiB through odd-sized writes with bounded memory.
func TestBase64WriterLarge(t *testing.T) {
	data := make([]byte, 16<<20+2)
	mathrand.NewChaCha8([32]byte{7}).Read(data)
	enc := []byte(base64.StdEncoding.EncodeToString(data))
	var out bytes.Buffer
	out.Grow(len(data))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w := NewBase64Writer(&out)
	for in := enc; len(in) > 0; {
		n := min(len(in), 65537)
		if _, err := w.Write(in[:n]); err != nil {
			t.Fatal(err)
		}
		in = in[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("decoded data differs")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("allocated %d bytes", alloc)
	}
}

func TestIsBase64Prefix(t *testing.T) {
	for _, tt := range base64Cases {
		want := tt.ok && tt.in != ""
		if got := IsBase64Prefix([]byte(tt.in), true); got != want {
			t.Errorf("IsBase64Prefix(%q, true) = %v, want %v", tt.in, got, want)
		}
		if want {
			for i := 1; i <= len(tt.in); i++ {
				if !IsBase64Prefix([]byte(tt.in[:i]), false) {
					t.Errorf("IsBase64Prefix(%q, false) = false for a prefix of %q", tt.in[:i], tt.in)
				}
			}
		}
	}
	prefixes := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"Q", true},
		{"QUJDRA", true},
		{"QUJDRA=", true},
		{"QUJDRA==", true},
		{"QUJDRA===", false},
		{"QUJDRB=", false}, // unused bits
		{"QUJ=", false},
		{"QUI=", true},
		{"QUI==", false},
		{"Q=", false},
		{"=", false},
		{"QUJD\r\n", false},
		// Raw media is not base64 (contract §6 vector 6: such a body is stored as is).
		{"ID3\x04\x00\x00\x00", false},
		{"RIFF\x24\x08\x00\x00WAVE", false},
		{"%PDF-1.4", false},
		{"some random content: 0123456789abcdef", false},
	}
	for _, tt := range prefixes {
		if got := IsBase64Prefix([]byte(tt.in), false); got != tt.want {
			t.Errorf("IsBase64Prefix(%q, false) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func BenchmarkBase64Writer(b *testing.B) {
	data := make([]byte, 8<<20)
	mathrand.NewChaCha8([32]byte{}).Read(data)
	enc := []byte(base64.StdEncoding.EncodeToString(data))
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		w := NewBase64Writer(io.Discard)
		for in := enc; len(in) > 0; {
			n := min(len(in), 32<<10)
			if _, err := w.Write(in[:n]); err != nil {
				b.Fatal(err)
			}
			in = in[n:]
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
