package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// sidecar is the on-disk record of an object, at objects/<key>. Its key is
// its path, so that moving a folder moves its objects with one rename.
type sidecar struct {
	Format      int             `json:"attachd_object"`
	Blob        string          `json:"blob"`
	Size        int64           `json:"size"`
	SHA256      string          `json:"sha256"`
	ContentType string          `json:"content_type"`
	DocID       string          `json:"doc_id,omitempty"`
	MediaID     string          `json:"media_id,omitempty"`
	Meta        json.RawMessage `json:"metadata,omitempty"`
	Props       json.RawMessage `json:"dav_props,omitempty"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
	ModTime     time.Time       `json:"mtime"`
}

func encodeSidecar(o Object) ([]byte, error) {
	b, err := json.Marshal(sidecar{Format: 1, Blob: o.Blob, Size: o.Size, SHA256: o.SHA256,
		ContentType: o.ContentType, DocID: o.DocID, MediaID: o.MediaID, Meta: nilIfEmpty(o.Meta),
		Props: nilIfEmpty(o.Props), Created: o.Created, Updated: o.Updated, ModTime: o.ModTime})
	if err != nil {
		return nil, fmt.Errorf("encode sidecar: %w", err)
	}
	return b, nil
}

// writeSidecar writes o's sidecar into place; see placeSidecar.
func (s *Store) writeSidecar(o Object) (*placement, error) { return s.placeSidecar(o, nil, nil, false) }

// placeSidecar writes o's sidecar and renames it into place once durable has
// returned: the sidecar's own write and fsync run meanwhile, so a store waits
// for two rounds of syncs, not four. The placement it returns undoes the
// rename until done is called (see commit.go). d is the key's folder, if
// the caller holds it open already. absent says the caller saw no sidecar
// at the key under the key's lock, so there is none to keep for the undo.
//
// With a shared index there is no objects tree: the index is the record, and
// the placement is empty once the bytes are durable.
func (s *Store) placeSidecar(o Object, d *dirFD, durable func() error, absent bool) (*placement, error) {
	if s.shared {
		if durable != nil {
			if err := durable(); err != nil {
				return nil, err
			}
		}
		return &placement{s: s}, nil
	}
	var durableErr chan error
	if durable != nil {
		durableErr = make(chan error, 1)
		go func() { durableErr <- durable() }()
	}
	wait := func() error {
		if durableErr == nil {
			return nil
		}
		err := <-durableErr
		durableErr = nil
		return err
	}
	p := &placement{s: s}
	fail := func(err error) (*placement, error) {
		err = errors.Join(err, wait())
		if uerr := p.undo(); uerr != nil {
			s.log.Warn("could not remove a folder made for a failed store; reindex removes it", "err", uerr)
		}
		return nil, err
	}
	b, err := encodeSidecar(o)
	if err != nil {
		return fail(err)
	}
	parent, base := Split(o.Key)
	dir := join("objects", parent)
	if err := s.mkdirAllFor(p, dir); err != nil {
		return fail(err)
	}
	tmp, err := s.writeTemp(b)
	if err != nil {
		return fail(err)
	}
	if d == nil {
		if d, err = s.openDirFD(dir); err != nil {
			s.tmpDir.remove(tmp)
			return fail(fmt.Errorf("write sidecar of %q: %w", UnescapeKey(o.Key), mapErr(err)))
		}
		defer d.close()
	}
	if err := wait(); err != nil {
		s.tmpDir.remove(tmp)
		return fail(err)
	}
	if !absent {
		if err := p.linkPrevious(d, base); err != nil {
			s.tmpDir.remove(tmp)
			return fail(err)
		}
	}
	err = failpoint("sidecar-rename")
	if err == nil {
		err = s.tmpDir.renameTo(tmp, d, base)
	}
	if err != nil {
		s.tmpDir.remove(tmp)
		p.done()
		return fail(fmt.Errorf("write sidecar of %q: %w", UnescapeKey(o.Key), mapErr(err)))
	}
	p.name = "objects/" + o.Key
	err = failpoint("sidecar-dir-fsync")
	if err == nil {
		err = d.sync()
	}
	if err != nil {
		return nil, s.rollback(p, mapErr(err))
	}
	return p, nil
}

func nilIfEmpty(b json.RawMessage) json.RawMessage {
	if len(b) == 0 || string(b) == "{}" || string(b) == "null" {
		return nil
	}
	return b
}

func (s *Store) readSidecar(key string) (Object, error) {
	b, err := s.root.ReadFile("objects/" + key)
	if err != nil {
		return Object{}, err
	}
	return decodeSidecar(key, b)
}

func decodeSidecar(key string, b []byte) (Object, error) {
	var sc sidecar
	if err := json.Unmarshal(b, &sc); err != nil {
		return Object{}, fmt.Errorf("decode sidecar: %w", err)
	}
	if sc.Format != 1 || len(sc.Blob) < 3 || strings.ContainsAny(sc.Blob, "/\\.") {
		return Object{}, fmt.Errorf("not an attachd sidecar (format %d)", sc.Format)
	}
	o := Object{Key: key, Blob: sc.Blob, Size: sc.Size, SHA256: sc.SHA256, ContentType: sc.ContentType,
		DocID: sc.DocID, MediaID: sc.MediaID, Meta: sc.Meta, Props: sc.Props,
		Created: sc.Created, Updated: sc.Updated, ModTime: sc.ModTime}
	if o.ModTime.IsZero() {
		o.ModTime = o.Updated
	}
	return o, nil
}
