package kazoo

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// ErrNotBase64 is wrapped by every error reporting that a text is not strict base64:
// the standard alphabet, '=' padding only at the very end, a length that is a multiple
// of 4, zero unused bits, and no line breaks or other white space. That is what Erlang's
// base64:encode produces, which Kazoo uses for base64_encode_data (contract §1.1).
var ErrNotBase64 = errors.New("not strict base64")

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// base64Value maps a byte to its 6-bit value, or to -1 outside the alphabet.
var base64Value = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := range len(base64Alphabet) {
		t[base64Alphabet[i]] = int8(i)
	}
	return t
}()

// strictBase64 rejects non-zero unused bits. It still skips CR and LF, which is why
// every input is checked against base64Value before it is decoded.
var strictBase64 = base64.StdEncoding.Strict()

// base64Chunk is how much text one Write decodes at a time; a multiple of 4.
const base64Chunk = 32 << 10

// NewBase64Writer returns a WriteCloser that strictly decodes the standard padded
// base64 written to it and writes the decoded bytes to w, streaming, with bounded
// memory. Any byte outside the alphabet (CR, LF and space included), padding anywhere
// but at the very end, non-zero unused bits, or a total length that is not a multiple
// of 4 is an error wrapping ErrNotBase64, returned from Write or from Close. Errors
// from w are returned as they are. Close does not close w. Empty input is valid and
// writes nothing.
//
// Nothing in Kazoo's request says that a part is base64 (contract §1.1): the caller
// decides from the handler's settings, or with IsBase64Prefix.
func NewBase64Writer(w io.Writer) io.WriteCloser {
	return &base64Writer{w: w}
}

type base64Writer struct {
	w      io.Writer
	quad   [4]byte // a quantum split across Writes
	nq     int
	off    int64 // input bytes decoded so far, for error messages
	ended  bool  // a padded quantum was decoded: nothing may follow
	closed bool
	err    error // sticky
	out    []byte
}

var errBase64Closed = errors.New("kazoo: write to a closed base64 writer")

func (b *base64Writer) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.closed {
		return 0, errBase64Closed
	}
	written := 0
	for len(p) > 0 {
		if b.ended {
			return written, b.fail(fmt.Errorf("%w: data after padding at offset %d", ErrNotBase64, b.off))
		}
		var src []byte
		if b.nq > 0 || len(p) < 4 {
			c := copy(b.quad[b.nq:], p)
			for i, ch := range p[:c] {
				if base64Value[ch] < 0 && ch != '=' {
					return written, b.fail(invalidByte(ch, b.off+int64(b.nq+i)))
				}
			}
			b.nq += c
			p = p[c:]
			written += c
			if b.nq < 4 {
				break
			}
			src, b.nq = b.quad[:], 0
		} else {
			k := min(len(p)&^3, base64Chunk)
			src, p = p[:k], p[k:]
			written += k
		}
		if err := b.decode(src); err != nil {
			return written, err
		}
	}
	return written, nil
}

// decode checks and decodes src, whose length is a multiple of 4, and writes the
// result to b.w.
func (b *base64Writer) decode(src []byte) error {
	for i, c := range src {
		if base64Value[c] >= 0 {
			continue
		}
		if c != '=' {
			return b.fail(invalidByte(c, b.off+int64(i)))
		}
		// Padding may only fill the last one or two bytes of a quantum, and that
		// quantum ends the text.
		q := len(src) - 4
		if i < q+2 || (i == q+2 && src[q+3] != '=') {
			return b.fail(fmt.Errorf("%w: padding before the end at offset %d", ErrNotBase64, b.off+int64(i)))
		}
		b.ended = true
		break
	}
	if b.out == nil {
		b.out = make([]byte, base64Chunk/4*3)
	}
	n, err := strictBase64.Decode(b.out, src)
	if err != nil {
		var at base64.CorruptInputError
		if errors.As(err, &at) {
			return b.fail(fmt.Errorf("%w: non-zero unused bits at offset %d", ErrNotBase64, b.off+int64(at)))
		}
		return b.fail(fmt.Errorf("%w: %v", ErrNotBase64, err))
	}
	b.off += int64(len(src))
	m, err := b.w.Write(b.out[:n])
	if err == nil && m < n {
		err = io.ErrShortWrite
	}
	if err != nil {
		return b.fail(err)
	}
	return nil
}

// Close reports an error wrapping ErrNotBase64 if the text ended inside a quantum, or
// the error that ended writing early.
func (b *base64Writer) Close() error {
	if !b.closed && b.err == nil && b.nq != 0 {
		b.fail(fmt.Errorf("%w: length %d is not a multiple of 4", ErrNotBase64, b.off+int64(b.nq)))
	}
	b.closed = true
	return b.err
}

func (b *base64Writer) fail(err error) error {
	b.err = err
	return err
}

func invalidByte(c byte, off int64) error {
	return fmt.Errorf("%w: byte 0x%02x at offset %d", ErrNotBase64, c, off)
}

// IsBase64Prefix reports whether p could be the beginning (complete=false) or the
// whole (complete=true) of a strict base64 text as NewBase64Writer accepts it. Empty
// input is not base64. It lets a caller sniff whether a part that Kazoo sent with
// base64_encode_data is encoded (contract §1.1: nothing in the request says so).
func IsBase64Prefix(p []byte, complete bool) bool {
	if len(p) == 0 {
		return false
	}
	i := 0
	for i < len(p) && base64Value[p[i]] >= 0 {
		i++
	}
	if i == len(p) { // no padding
		return !complete || len(p)%4 == 0
	}
	// p[i] should start the padding: at the 3rd or 4th byte of the last quantum, with
	// the unused low bits of the byte before it zero.
	pad := len(p) - i
	switch i % 4 {
	case 2: // "xx=="
		if pad > 2 || (complete && pad != 2) || base64Value[p[i-1]]&0x0f != 0 {
			return false
		}
	case 3: // "xxx="
		if pad > 1 || base64Value[p[i-1]]&0x03 != 0 {
			return false
		}
	default:
		return false
	}
	for _, c := range p[i:] {
		if c != '=' {
			return false
		}
	}
	return true
}
