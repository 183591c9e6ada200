// Package chunkio moves bytes over gRPC streams as chunks, for the plugin SDK
// and the host alike: one side reads an io.Reader into chunks, the other
// turns received chunks back into an io.Reader.
package chunkio

import "io"

// Send reads r in chunks of size bytes and passes each to send, until r ends.
// send blocks while the receiver's flow-control window is full, which is the
// backpressure that keeps memory flat. It reads through io.Copy, so a reader
// that can write itself out (pkg/sftp's File keeps many reads in flight) does.
func Send(r io.Reader, size int, send func([]byte) error) error {
	w := &chunkWriter{size: size, send: send}
	if _, err := io.Copy(w, r); err != nil {
		return err
	}
	return w.flush()
}

// chunkWriter gathers writes into chunks of size bytes.
type chunkWriter struct {
	size int
	send func([]byte) error
	buf  []byte
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if w.buf == nil {
			// A fresh buffer per chunk: gRPC may still hold a message after Send.
			w.buf = make([]byte, 0, w.size)
		}
		m := copy(w.buf[len(w.buf):w.size], p)
		w.buf, p = w.buf[:len(w.buf)+m], p[m:]
		if len(w.buf) == w.size {
			if err := w.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.send(w.buf)
	w.buf = nil
	return err
}

// Reader reads the chunks of a stream. recv returns the next chunk, io.EOF
// at the end, or an error; stop cancels the stream.
type Reader struct {
	recv func() ([]byte, error)
	stop func()
	buf  []byte
	err  error
}

// NewReader returns a Reader over recv.
func NewReader(recv func() ([]byte, error), stop func()) *Reader {
	return &Reader{recv: recv, stop: stop}
}

// Fill waits for the first bytes, or the end, of the stream. Callers use it
// to report an error such as "not found" when opening, not on the first Read.
func (r *Reader) Fill() error {
	for len(r.buf) == 0 && r.err == nil {
		r.buf, r.err = r.recv()
	}
	if len(r.buf) > 0 {
		return nil
	}
	return r.err
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if err := r.Fill(); err != nil {
		return 0, err
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Close cancels the stream; the sender sees it as cancelled.
func (r *Reader) Close() error {
	r.stop()
	return nil
}
