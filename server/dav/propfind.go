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
func (q *request) propfind() error {
	pf, d, err := q.parsePropfindRequest()
	if err != nil {
		return err
	}
	if q.view != nil {
		return q.propfindView(pf, d)
	}
	self, err := q.stat()
	if err != nil {
		return err
	}
	members := self.dir && d == 1
	pc, err := q.propCtx(pf, self.key, members)
	if err != nil {
		return err
	}
	m := newMultistatus(q.w)
	pc.write(m, &self, pf)
	if members && q.rel == "" && q.h.opts.ByDate {
		pc.write(m, q.viewRoot(), pf)
	}
	if members {
		// One index listing (or its cached copy): nothing per child is
		// opened, stat'ed or sniffed (x/net/webdav does all three:
		// docs/webdav-clients.md §3.3). Without cancellation: modernc.org/sqlite
		// arms an interrupt watch on every row step for a cancellable context.
		kids, err := q.h.lists.list(context.WithoutCancel(q.r.Context()), q.h.st, q.key, pf.wantsMeta())
		if err != nil {
			return err
		}
		if q.writeMembers(m, pc, pf, self.href, kids) != nil {
			return nil // the client went away
		}
	}
	m.close()
	return nil
}

// parsePropfindRequest reads a PROPFIND's Depth, 0 or 1, and its body.
func (q *request) parsePropfindRequest() (propfindReq, int, error) {
	d, err := depth(q.r, 1)
	if err != nil {
		return propfindReq{}, 0, err
	}
	if d < 0 {
		return propfindReq{}, 0, errFiniteDepth
	}
	body, err := q.readXMLBody()
	if err != nil {
		return propfindReq{}, 0, err
	}
	pf, err := parsePropfind(body, q.h.maxPropfindNames())
	return pf, d, err
}

// writeMembers appends a <response> for each member of the collection at
// parent to m, flushing as it goes. Its error is the connection's.
func (q *request) writeMembers(m *multistatus, pc *propCtx, pf propfindReq, parent string, kids []listEntry) error {
	var r resource
	for i := range kids {
		if q.h.opts.HideJunk == JunkHide && isJunk(store.UnescapeSegment(kids[i].Name)) {
			continue
		}
		e, err := kids[i].load(context.WithoutCancel(q.r.Context()), q.h.st)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) { // else removed since listed
				q.h.log.Warn("PROPFIND: entry left out", "key", store.UnescapeKey(kids[i].Key), "err", err)
			}
			continue
		}
		r = resource{key: e.Key, dir: e.IsDir, obj: e.Object, d: e.Dir}
		r.href = q.childHref(parent, e.Name, e.IsDir)
		pc.write(m, &r, pf)
		if len(m.b) > 32<<10 {
			if err := m.flush(); err != nil {
				return err
			}
		}
	}
	return nil
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
		if q.h.st.HasQuotas() {
			qr, ctx := q.h.st.QuotaReader(), q.r.Context()
			pc.quotaOf = func(key string) (uint64, uint64, bool) {
				qu, ok, err := qr.Of(ctx, key)
				if err != nil {
					q.h.log.Warn("quota usage unavailable", "key", store.UnescapeKey(key), "err", err)
					return 0, 0, false
				}
				if !ok {
					return 0, 0, false
				}
				return uint64(max(qu.Bytes-qu.UsedBytes, 0)), uint64(qu.UsedBytes), true
			}
		}
	}
	return pc, nil
}

// write appends the <response> for r to m.
func (pc *propCtx) write(m *multistatus, r *resource, pf propfindReq) {
	b := append(m.b, "<D:response><D:href>"...)
	b = appendEscaped(b, r.href)
	b = append(b, "</D:href><D:propstat><D:prop>"...)
	switch {
	case pf.propname:
		b = pc.appendPropNames(b, r)
	case pf.allprop:
		b = pc.appendAllProps(b, r, pf.names)
	default:
		b = pc.appendNamedProps(b, r, pf.names)
	}
	m.b = append(b, "</D:response>\n"...)
}

// appendPropNames appends the rest of a propname answer: the name of every
// property r has, in one propstat.
func (pc *propCtx) appendPropNames(b []byte, r *resource) []byte {
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
	return append(b, "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"...)
}

// appendAllProps appends the rest of an allprop answer: the live properties
// RFC 4918 defines, the Kazoo metadata, the dead properties, and those the
// <include> element names (allprop leaves them out).
func (pc *propCtx) appendAllProps(b []byte, r *resource, include []xml.Name) []byte {
	for _, n := range allLive {
		b, _ = pc.appendLiveProp(b, r, n)
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
	for _, p := range pc.deadProps(r) {
		b = appendDead(b, p)
	}
	for _, n := range include {
		b, _ = pc.appendLiveProp(b, r, n)
	}
	return append(b, "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"...)
}

// appendNamedProps appends the rest of an answer for the properties named:
// those r has in a 200 propstat, the others in a 404 one.
func (pc *propCtx) appendNamedProps(b []byte, r *resource, names []xml.Name) []byte {
	var missing []xml.Name
	dead := pc.deadProps(r)
	for _, n := range names {
		var ok bool
		if b, ok = pc.appendLiveProp(b, r, n); ok {
			continue
		}
		if p, ok := findDead(dead, n); ok {
			b = appendDead(b, p)
		} else {
			missing = append(missing, n)
		}
	}
	if len(missing) == len(names) && len(missing) > 0 {
		// No 200 propstat: take back its opening, which write appended.
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
	return b
}

// appendLiveProp appends the element of the live property n, and reports
// whether r has it; if not, b is returned as it was.
func (pc *propCtx) appendLiveProp(b []byte, r *resource, n xml.Name) ([]byte, bool) {
	start := len(b)
	b = appendOpen(b, n)
	b, ok := pc.appendLive(b, r, n)
	if !ok {
		return b[:start], false
	}
	return appendClose(b, n), true
}

// findDead returns the dead property named n.
func findDead(dead []deadProp, n xml.Name) (deadProp, bool) {
	for _, p := range dead {
		if p.NS == n.Space && p.Name == n.Local {
			return p, true
		}
	}
	return deadProp{}, false
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
