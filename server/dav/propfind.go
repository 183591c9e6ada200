package dav

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/attachd/attachd/server/store"
)

// depth reads the Depth header: 0, 1 or -1 for infinity; def when absent.
func depth(r *http.Request, def int) (int, error) {
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("Depth"))) {
	case "":
		return def, nil
	case "0":
		return 0, nil
	case "1":
		return 1, nil
	case "infinity":
		return -1, nil
	}
	return 0, errBadRequest
}

// propfind answers PROPFIND (RFC 4918 §9.1) at Depth 0 or 1. Depth infinity
// is refused with the propfind-finite-depth precondition, as Apache and nginx
// do, since it would walk the whole store. A missing Depth is taken as 1, not
// infinity: sftpgo does the same, and the clients that omit it want a listing.
func (q *request) propfind() {
	d, err := depth(q.r, 1)
	if err != nil {
		q.fail(err)
		return
	}
	if d < 0 {
		q.fail(errFiniteDepth)
		return
	}
	body, err := q.readXMLBody()
	if err != nil {
		q.fail(err)
		return
	}
	pf, err := parsePropfind(body, q.h.maxPropfindNames())
	if err != nil {
		q.fail(err)
		return
	}
	if q.view != nil {
		q.propfindView(pf, d)
		return
	}
	self, err := q.stat()
	if err != nil {
		q.fail(err)
		return
	}
	pc, err := q.propCtx(pf, self.key, self.dir && d == 1)
	if err != nil {
		q.fail(err)
		return
	}
	m := newMultistatus(q.w)
	pc.write(m, &self, pf)
	if self.dir && d == 1 && q.rel == "" && q.h.opts.ByDate {
		pc.write(m, q.viewRoot(), pf)
	}
	if self.dir && d == 1 {
		// One index listing (or its cached copy): nothing per child is
		// opened, stat'ed or sniffed (x/net/webdav does all three:
		// docs/webdav-clients.md §3.3). Without cancellation: modernc.org/sqlite
		// arms an interrupt watch on every row step for a cancellable context.
		kids, err := q.h.lists.list(context.WithoutCancel(q.r.Context()), q.h.st, q.key, pf.wantsMeta())
		if err != nil {
			q.fail(err)
			return
		}
		var r resource
		for i := range kids {
			if q.h.opts.HideJunk == JunkHide && isJunk(store.UnescapeSegment(kids[i].Name)) {
				continue
			}
			e, err := kids[i].load(context.WithoutCancel(q.r.Context()), q.h.st)
			if err != nil {
				if !errors.Is(err, store.ErrNotFound) { // else removed since listed
					q.h.log.Warn("PROPFIND: entry left out", "key", kids[i].Key, "err", err)
				}
				continue
			}
			r = resource{key: e.Key, dir: e.IsDir, obj: e.Object, d: e.Dir}
			r.href = q.childHref(self.href, e.Name, e.IsDir)
			pc.write(m, &r, pf)
			if len(m.b) > 32<<10 {
				if m.flush() != nil {
					return // the client went away
				}
			}
		}
	}
	m.close()
}

// maxPropfindNames is the most properties a PROPFIND may name: more than
// any resource has, the dead ones (MaxProps) and the live ones.
func (h *Handler) maxPropfindNames() int { return h.opts.MaxProps + 64 }

// childHref appends a child's escaped name to its collection's href.
func (q *request) childHref(parent, name string, dir bool) string {
	b := make([]byte, 0, len(parent)+len(name)+4)
	b = append(b, parent...)
	if !strings.HasSuffix(parent, "/") {
		b = append(b, '/')
	}
	b = appendEscapedKey(b, name)
	if dir {
		b = append(b, '/')
	}
	return string(b)
}

// stat returns the request's target as a resource. The user's root always
// exists for them, even before anything is stored there.
func (q *request) stat() (resource, error) {
	ctx := q.r.Context()
	o, err := q.h.st.Stat(ctx, q.key)
	if err == nil {
		return resource{key: q.key, obj: o, href: q.h.relHref(q.rel, false)}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return resource{}, err
	}
	dir, err := q.h.st.StatDir(ctx, q.key)
	if err != nil && !(errors.Is(err, store.ErrNotFound) && q.rel == "") {
		return resource{}, err
	}
	return resource{key: q.key, dir: true, d: dir, href: q.h.relHref(q.rel, true)}, nil
}

// propCtx reads, once per request, the locks and quota the properties need.
func (q *request) propCtx(pf propfindReq, key string, below bool) (*propCtx, error) {
	pc := &propCtx{hrefOf: func(k string) string { h, _ := q.href(k, false); return h }, nowForLocks: time.Now(),
		maxRawProps: q.h.maxRawProps(), log: q.h.log}
	want := func(n xml.Name) bool {
		if pf.allprop && n == pnLockDiscovery {
			return true
		}
		for _, x := range pf.names {
			if x == n {
				return true
			}
		}
		return false
	}
	if want(pnLockDiscovery) {
		ls, err := q.h.st.Locks(q.r.Context(), key, below)
		if err != nil {
			return nil, err
		}
		pc.locks = ls
	}
	if want(pnQuotaAvail) || want(pnQuotaUsed) {
		var err error
		pc.quotaAvail, pc.quotaUsed, err = quota(q.h.st.Dir())
		pc.quotaOK = err == nil
		if err != nil {
			q.h.log.Warn("quota properties unavailable", "err", err)
		}
	}
	return pc, nil
}

// write appends the <response> for r to m.
func (pc *propCtx) write(m *multistatus, r *resource, pf propfindReq) {
	b := m.b
	b = append(b, "<D:response><D:href>"...)
	b = appendEscaped(b, r.href)
	b = append(b, "</D:href><D:propstat><D:prop>"...)
	switch {
	case pf.propname:
		for _, n := range allLive {
			b = appendEmpty(b, n)
		}
		if r.dir && !r.virtual {
			b = appendEmpty(b, pnQuotaAvail)
			b = appendEmpty(b, pnQuotaUsed)
		}
		if !r.dir {
			for k, v := range kazooValues(r.obj.Meta, r.obj.MediaID, r.obj.DocID) {
				if v != "" {
					b = appendEmpty(b, xml.Name{Space: NSAttachd, Local: k})
				}
			}
		}
		for _, p := range pc.deadProps(r) {
			b = appendEmpty(b, xml.Name{Space: p.NS, Local: p.Name})
		}
		b = append(b, "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"...)
	case pf.allprop:
		for _, n := range allLive {
			start := len(b)
			b = appendOpen(b, n)
			var ok bool
			if b, ok = pc.appendLive(b, r, n); !ok {
				b = b[:start]
				continue
			}
			b = appendClose(b, n)
		}
		if !r.dir {
			if kv := kazooValues(r.obj.Meta, r.obj.MediaID, r.obj.DocID); kv != nil {
				for _, k := range kazooProps {
					if v := kv[k]; v != "" {
						b = appendProp(b, xml.Name{Space: NSAttachd, Local: k}, appendEscaped(nil, v))
					}
				}
			}
		}
		dead := pc.deadProps(r)
		for _, p := range dead {
			b = appendDead(b, p)
		}
		// <include> names live properties allprop leaves out.
		for _, n := range pf.names {
			start := len(b)
			b = appendOpen(b, n)
			var ok bool
			if b, ok = pc.appendLive(b, r, n); !ok {
				b = b[:start]
				continue
			}
			b = appendClose(b, n)
		}
		b = append(b, "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"...)
	default:
		var missing []xml.Name
		dead := pc.deadProps(r)
		for _, n := range pf.names {
			start := len(b)
			b = appendOpen(b, n)
			var ok bool
			if b, ok = pc.appendLive(b, r, n); ok {
				b = appendClose(b, n)
				continue
			}
			b = b[:start]
			found := false
			for _, p := range dead {
				if p.NS == n.Space && p.Name == n.Local {
					b = appendDead(b, p)
					found = true
					break
				}
			}
			if !found {
				missing = append(missing, n)
			}
		}
		if len(missing) == len(pf.names) && len(missing) > 0 {
			b = b[:len(b)-len("<D:propstat><D:prop>")]
		} else {
			b = append(b, "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"...)
		}
		if len(missing) > 0 {
			b = append(b, "<D:propstat><D:prop>"...)
			for _, n := range missing {
				b = appendEmpty(b, n)
			}
			b = append(b, "</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>"...)
		}
	}
	b = append(b, "</D:response>\n"...)
	m.b = b
}

// wantsMeta reports whether the answer shows Kazoo metadata, which is read
// from each object's metadata JSON.
func (pf propfindReq) wantsMeta() bool {
	if pf.allprop || pf.propname {
		return true
	}
	for _, n := range pf.names {
		if n.Space == NSAttachd {
			return true
		}
	}
	return false
}
