// Command attachd-plugin-example is a complete attachd storage plugin that
// keeps blobs in memory: a starting point for your own.
package main

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/attachd/attachd/plugins/sdk"
)

type memory struct{ blobs sync.Map } // name → []byte, written only on Commit

func (m *memory) Stat(ctx context.Context, name string) (sdk.BlobInfo, error) {
	b, ok := m.blobs.Load(name)
	if !ok {
		return sdk.BlobInfo{}, sdk.ErrNotFound
	}
	return sdk.BlobInfo{Name: name, Size: int64(len(b.([]byte)))}, nil
}

func (m *memory) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	b, ok := m.blobs.Load(name)
	if !ok {
		return nil, sdk.ErrNotFound
	}
	if n < 0 {
		n = int64(len(b.([]byte)))
	}
	return io.NopCloser(io.NewSectionReader(bytes.NewReader(b.([]byte)), off, n)), nil
}

type writer struct {
	bytes.Buffer
	commit func([]byte)
}

func (w *writer) Commit(ctx context.Context) error { w.commit(w.Bytes()); return nil }
func (w *writer) Abort() error                     { return nil }

func (m *memory) Create(ctx context.Context, name string, size int64) (sdk.BlobWriter, error) {
	return &writer{commit: func(b []byte) { m.blobs.Store(name, b) }}, nil
}

func (m *memory) Delete(ctx context.Context, name string) error { m.blobs.Delete(name); return nil }

func (m *memory) List(ctx context.Context, prefix, cursor string, limit int) ([]sdk.BlobInfo, string, error) {
	var all []sdk.BlobInfo
	m.blobs.Range(func(name, b any) bool {
		all = append(all, sdk.BlobInfo{Name: name.(string), Size: int64(len(b.([]byte)))})
		return true
	})
	page, next := sdk.Page(all, prefix, cursor, limit)
	return page, next, nil
}

func main() { sdk.ServeStorage("example", "1.0.0", &memory{}) }
