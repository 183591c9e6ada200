package chunkio

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestSendChunks(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 257, 1000, 4096} {
		data := make([]byte, n)
		rand.Read(data)
		readers := map[string]io.Reader{
			"plain":    bytes.NewReader(data), // has WriteTo
			"one-byte": iotest.OneByteReader(bytes.NewReader(data)),
			"half":     iotest.HalfReader(bytes.NewReader(data)),
		}
		for name, r := range readers {
			var got []byte
			var sizes []int
			err := Send(r, 256, func(b []byte) error {
				sizes = append(sizes, len(b))
				got = append(got, b...)
				return nil
			})
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%d bytes, %s: err %v, bytes equal %v", n, name, err, bytes.Equal(got, data))
			}
			for i, s := range sizes {
				if s == 0 || s > 256 || (i < len(sizes)-1 && s != 256) {
					t.Fatalf("%d bytes, %s: chunk sizes %v", n, name, sizes)
				}
			}
		}
	}
}

func TestSendErrors(t *testing.T) {
	boom := errors.New("boom")
	if err := Send(iotest.ErrReader(boom), 16, func([]byte) error { return nil }); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
	if err := Send(bytes.NewReader(make([]byte, 100)), 16, func([]byte) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("send error: %v", err)
	}
}

func TestReader(t *testing.T) {
	chunks := [][]byte{[]byte("ab"), nil, []byte("cde")}
	r := NewReader(func() ([]byte, error) {
		if len(chunks) == 0 {
			return nil, io.EOF
		}
		c := chunks[0]
		chunks = chunks[1:]
		return c, nil
	}, func() {})
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "abcde" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
}
