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
// PROPPATCHes after every upload (webdav-anchors §4.3).
const nsWin32 = "urn:schemas-microsoft-com:"

// proppatch answers PROPPATCH (RFC 4918 §9.2): dead properties are kept with
// the object (in its sidecar) or the folder (in the index), all or nothing.
// Live properties are protected (403), except the modification time, which
// Windows (Win32LastModifiedTime) and sftpgo-style clients (getlastmodified)
// set this way; other Win32* properties are accepted and dropped, as Windows
// only needs a 207 that says they were (golang/go #43929).
func (q *request) proppatch() {
	body, err := readXMLBody(q.r)
	if err != nil {
		q.fail(err)
		return
	}
	ops, err := parseProppatch(body)
	if err != nil {
		q.fail(err)
		return
	}
	res, err := q.stat()
	if err != nil {
		q.fail(err)
		return
	}
	if err := q.preconditions(lockTarget{key: q.key}); err != nil {
		q.fail(err)
		return
	}
	type result struct {
		name   xml.Name
		status int
	}
	var results []result
	failed := false
	var mtime time.Time
	dead := deadProps(res.props())
	for _, op := range ops {
		for _, p := range op.props {
			n := xml.Name{Space: p.NS, Local: p.Name}
			status := http.StatusOK
			switch {
			case res.key == "" && res.dir:
				status = http.StatusForbidden // the store root keeps no properties
			case n.Space == nsWin32:
				if n.Local == "Win32LastModifiedTime" && !op.remove {
					if t, err := http.ParseTime(textOf(p.XML)); err == nil {
						mtime = t
					}
				}
			case n == pnLastModified && !op.remove:
				t, err := http.ParseTime(textOf(p.XML))
				if err != nil {
					status = http.StatusConflict
				} else {
					mtime = t
				}
			case n.Space == NSAttachd, n.Space == nsDAV && liveDAV[n.Local]:
				status = http.StatusForbidden
			default:
				dead = applyDead(dead, p, op.remove)
			}
			failed = failed || status != http.StatusOK
			results = append(results, result{n, status})
		}
	}
	if !failed {
		err = q.saveProps(&res, dead, mtime)
		if err != nil {
			q.fail(err)
			return
		}
	}
	m := newMultistatus(q.w)
	m.b = append(m.b, "<D:response><D:href>"...)
	m.b = appendEscaped(m.b, res.href)
	m.b = append(m.b, "</D:href>"...)
	for _, code := range []int{http.StatusOK, http.StatusForbidden, http.StatusConflict, http.StatusFailedDependency} {
		var names []xml.Name
		for _, r := range results {
			s := r.status
			if failed && s == http.StatusOK {
				s = http.StatusFailedDependency // §9.2: nothing was applied
			}
			if s == code {
				names = append(names, r.name)
			}
		}
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
	m.close()
}

// applyDead sets or removes one dead property, keeping the others in order.
func applyDead(dead []deadProp, p deadProp, remove bool) []deadProp {
	for i, d := range dead {
		if d.NS == p.NS && d.Name == p.Name {
			if remove {
				return append(dead[:i:i], dead[i+1:]...)
			}
			out := append([]deadProp(nil), dead...)
			out[i] = p
			return out
		}
	}
	if remove {
		return dead
	}
	return append(append([]deadProp(nil), dead...), p)
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
