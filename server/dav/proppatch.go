package dav

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"time"

	"github.com/attachd/attachd/server/store"
)

// nsWin32 is the namespace of the Win32* properties Windows' mini-redirector
// PROPPATCHes after every upload (docs/webdav-clients.md §4.3).
const nsWin32 = "urn:schemas-microsoft-com:"

// proppatch answers PROPPATCH (RFC 4918 §9.2): dead properties are kept with
// the object (in its sidecar) or the folder (in the index), all or nothing.
// Live properties are protected (403), except the modification time, which
// Windows (Win32LastModifiedTime) and sftpgo-style clients (getlastmodified)
// set this way; other Win32* properties are accepted and dropped, as Windows
// only needs a 207 that says they were (golang/go #43929).
func (q *request) proppatch() error {
	body, err := q.readXMLBody()
	if err != nil {
		return err
	}
	ops, err := parseProppatch(body)
	if err != nil {
		return err
	}
	res, err := q.stat()
	if err != nil {
		return err
	}
	if err := q.preconditions(lockTarget{key: q.key}); err != nil {
		return err
	}
	pt := &patch{dead: newPropSet(deadProps(res.props()))}
	for _, op := range ops {
		for _, p := range op.props {
			pt.apply(&res, p, op.remove)
		}
	}
	final := pt.dead.list()
	if !pt.failed {
		pt.checkLimits(q.h, final)
	}
	if !pt.failed {
		if err := q.saveProps(&res, final, pt.mtime); err != nil {
			return err
		}
	}
	m := newMultistatus(q.w)
	pt.write(m, res.href)
	m.close()
	return nil
}

// patch is a PROPPATCH's instructions applied in memory, to be stored only
// if every one of them succeeded.
type patch struct {
	results []patchResult
	dead    *propSet
	mtime   time.Time // the modification time the request sets, or zero
	failed  bool      // some instruction failed: nothing is stored
}

// patchResult is the outcome of one instruction.
type patchResult struct {
	name   xml.Name
	status int
	set    bool // a dead property this request sets
}

// apply applies one instruction to res's properties.
func (pt *patch) apply(res *resource, p deadProp, remove bool) {
	n := xml.Name{Space: p.NS, Local: p.Name}
	r := patchResult{name: n, status: http.StatusOK}
	switch {
	case res.key == "" && res.dir:
		r.status = http.StatusForbidden // the store root keeps no properties
	case n.Space == nsWin32:
		if n.Local == "Win32LastModifiedTime" && !remove {
			if t, err := http.ParseTime(textOf(p.XML)); err == nil {
				pt.mtime = t
			}
		}
	case n == pnLastModified && !remove:
		t, err := http.ParseTime(textOf(p.XML))
		if err != nil {
			r.status = http.StatusConflict
		} else {
			pt.mtime = t
		}
	case n.Space == NSAttachd && n != pnLegalHold, n.Space == nsDAV && liveDAV[n.Local]:
		r.status = http.StatusForbidden
	default:
		pt.dead.apply(p, remove)
		r.set = !remove
	}
	pt.failed = pt.failed || r.status != http.StatusOK
	pt.results = append(pt.results, r)
}

// checkLimits fails the patch if the dead properties it leaves, final, do
// not fit in the limits. RFC 4918 §9.2.1: 507 for the properties that did
// not fit, 424 for the rest, and nothing is stored.
func (pt *patch) checkLimits(h *Handler, final []deadProp) {
	full := h.overflow(final, pt.dead.setHere)
	if len(full) == 0 {
		return
	}
	pt.failed = true
	for i, r := range pt.results {
		if r.set && full[r.name] {
			pt.results[i].status = http.StatusInsufficientStorage
		}
	}
}

// write appends the <response> for the resource at href to m: one propstat
// per status.
func (pt *patch) write(m *multistatus, href string) {
	m.b = append(m.b, "<D:response><D:href>"...)
	m.b = appendEscaped(m.b, href)
	m.b = append(m.b, "</D:href>"...)
	if len(pt.results) == 0 {
		// An update of nothing succeeds; the answer says so as Apache's
		// does, with an empty propstat.
		m.b = append(m.b, "<D:propstat><D:prop></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"...)
	}
	for _, code := range []int{http.StatusOK, http.StatusForbidden, http.StatusConflict,
		http.StatusInsufficientStorage, http.StatusFailedDependency} {
		names := pt.namesWith(code)
		if len(names) == 0 {
			continue
		}
		m.b = append(m.b, "<D:propstat><D:prop>"...)
		for _, n := range names {
			m.b = appendEmpty(m.b, n)
		}
		m.b = append(m.b, "</D:prop><D:status>"...)
		m.b = appendStatus(m.b, code)
		m.b = append(m.b, "</D:status></D:propstat>"...)
	}
	m.b = append(m.b, "</D:response>\n"...)
}

// namesWith returns the properties whose instruction ended with code.
func (pt *patch) namesWith(code int) []xml.Name {
	var names []xml.Name
	for _, r := range pt.results {
		s := r.status
		if pt.failed && s == http.StatusOK {
			s = http.StatusFailedDependency // §9.2: nothing was applied
		}
		if s == code {
			names = append(names, r.name)
		}
	}
	return names
}

// propSet is a resource's dead properties being changed by a PROPPATCH.
// Each set or remove costs one map access, so a body of many properties
// costs time linear in its size (copying the list on every set made a
// PROPPATCH of 100 000 new properties quadratic).
type propSet struct {
	props   []deadProp        // in order; a removed one is left with an empty Name
	at      map[xml.Name]int  // index in props of each present property
	setHere map[xml.Name]bool // present properties this request set
}

func newPropSet(ps []deadProp) *propSet {
	s := &propSet{props: ps, at: make(map[xml.Name]int, len(ps)), setHere: map[xml.Name]bool{}}
	for i, p := range ps {
		s.at[xml.Name{Space: p.NS, Local: p.Name}] = i
	}
	return s
}

// apply sets or removes one property, keeping the others in order.
func (s *propSet) apply(p deadProp, remove bool) {
	n := xml.Name{Space: p.NS, Local: p.Name}
	i, ok := s.at[n]
	switch {
	case remove && ok:
		s.props[i] = deadProp{}
		delete(s.at, n)
		delete(s.setHere, n)
	case remove:
	case ok:
		s.props[i] = p
		s.setHere[n] = true
	default:
		s.at[n] = len(s.props)
		s.props = append(s.props, p)
		s.setHere[n] = true
	}
}

// list returns the properties present, in order.
func (s *propSet) list() []deadProp {
	out := make([]deadProp, 0, len(s.at))
	for _, p := range s.props {
		if p.Name != "" {
			out = append(out, p)
		}
	}
	return out
}

// propSize is what one dead property counts against MaxPropsBytes: the
// bytes the client sent for it, so that the limit does not depend on how
// the store encodes them.
func propSize(p deadProp) int64 {
	return int64(len(p.NS) + len(p.Name) + len(p.Lang) + len(p.XML))
}

// overflow returns the properties set by this request that do not fit in
// the limits: starting from the properties the request left as they were,
// those it set are added in order and each that would pass MaxProps or
// MaxPropsBytes is refused. Nil means everything fits. A request that only
// removes properties always fits, even on a resource whose properties were
// stored before the limits existed, so that it can bring them under.
func (h *Handler) overflow(final []deadProp, setHere map[xml.Name]bool) map[xml.Name]bool {
	var count int
	var size int64
	for _, p := range final {
		count++
		size += propSize(p)
	}
	if count <= h.opts.MaxProps && size <= h.opts.MaxPropsBytes {
		return nil
	}
	count, size = 0, 0
	for _, p := range final {
		if !setHere[xml.Name{Space: p.NS, Local: p.Name}] {
			count++
			size += propSize(p)
		}
	}
	var full map[xml.Name]bool
	for _, p := range final {
		n := xml.Name{Space: p.NS, Local: p.Name}
		if !setHere[n] {
			continue
		}
		if count+1 > h.opts.MaxProps || size+propSize(p) > h.opts.MaxPropsBytes {
			if full == nil {
				full = map[xml.Name]bool{}
			}
			full[n] = true
			continue
		}
		count++
		size += propSize(p)
	}
	return full
}

func (q *request) saveProps(res *resource, dead []deadProp, mtime time.Time) error {
	raw := []byte("{}")
	if len(dead) > 0 {
		var err error
		if raw, err = json.Marshal(dead); err != nil {
			return fmt.Errorf("encode properties: %w", err)
		}
	}
	ctx := q.r.Context()
	if res.dir {
		_, err := q.h.st.UpdateDir(ctx, res.key, func(d *store.Dir) bool {
			d.Props = raw
			if !mtime.IsZero() {
				d.ModTime = mtime.UnixNano()
			}
			return true
		})
		return err
	}
	_, err := q.h.st.Update(ctx, res.key, func(o *store.Object) bool {
		o.Props = raw
		if !mtime.IsZero() {
			o.ModTime = mtime
		}
		return true
	})
	return err
}

// textOf returns the character data of a canonical XML value.
func textOf(x string) string {
	var b []byte
	in := false
	for i := 0; i < len(x); i++ {
		switch c := x[i]; {
		case c == '<':
			in = true
		case c == '>':
			in = false
		case !in:
			b = append(b, c)
		}
	}
	s := string(b)
	if u, err := unescapeXMLText(s); err == nil {
		return u
	}
	return s
}

func unescapeXMLText(s string) (string, error) {
	var v struct {
		S string `xml:",chardata"`
	}
	err := xml.Unmarshal([]byte("<x>"+s+"</x>"), &v)
	return v.S, err
}
