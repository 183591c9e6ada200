package dav

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/attachd/attachd/server/store"
)

// get answers GET and HEAD: an object's bytes, with ranges, or a small HTML
// index for a collection.
func (q *request) get() error {
	if q.view != nil {
		return q.getView()
	}
	f, o, err := q.h.st.Open(q.r.Context(), q.key)
	if errors.Is(err, store.ErrNotFound) {
		res, err := q.stat()
		if err != nil {
			return err
		}
		return q.listing(&res)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	q.serveObject(f, o)
	return nil
}

// serveObject sends an object's bytes. The Content-Type is the stored one,
// so http.ServeContent never sniffs; the ETag is the same strong tag PUT
// answered and PROPFIND lists, so If-Range and If-None-Match work with it.
// Ranges are honoured here, on the WebDAV side only: the Kazoo route never
// answers 206 (docs/kazoo.md §4).
func (q *request) serveObject(f store.ReadSeekCloser, o store.Object) {
	h := q.w.Header()
	h.Set("ETag", o.ETag())
	h.Set("Content-Type", contentType(o))
	// What was uploaded as one type must not be run as another (a
	// text/plain file as a script) by a browser that sniffs.
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(q.w, q.r, "", o.ModTime, f)
}

// listing answers GET on a collection with a plain HTML index rather than
// x/net/webdav's 405 (docs/webdav-clients.md §3.10): a browser pointed at a share
// link then shows the files, and their links download them; lftp and other
// clients without PROPFIND list folders from it. It reads the listing
// PROPFIND reads (and its cache), and is streamed the same way.
func (q *request) listing(res *resource) error {
	if !res.dir {
		return store.ErrNotFound
	}
	kids, err := q.h.lists.list(context.WithoutCancel(q.r.Context()), q.h.st, q.key, false)
	if err != nil {
		return err
	}
	q.writeListing(res.href, kids, q.rel == "" && q.h.opts.ByDate)
	return nil
}

func (q *request) writeListing(href string, kids []listEntry, withView bool) {
	h := q.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	if q.r.Method == http.MethodHead {
		q.w.WriteHeader(http.StatusOK)
		return
	}
	var b strings.Builder
	title := html.EscapeString(displayName(unescapeHref(href)))
	b.WriteString("<!doctype html>\n<meta charset=utf-8>\n<title>" + title + "</title>\n<h1>" + title + "</h1>\n<ul>\n")
	if withView {
		b.WriteString(`<li><a href="` + htmlHref(q.childHref(href, viewName, true)) + `">` + viewName + "/</a>\n")
	}
	for i := range kids {
		e := &kids[i]
		name := store.UnescapeSegment(e.Name)
		if q.h.opts.HideJunk == JunkHide && isJunk(name) {
			continue
		}
		link := q.childHref(href, e.Name, e.IsDir)
		b.WriteString(`<li><a href="` + htmlHref(link) + `">` + html.EscapeString(displayName(name)))
		if e.IsDir {
			b.WriteString("/</a>\n")
		} else {
			b.WriteString("</a> " + strconv.FormatInt(e.Object.Size, 10) + " bytes\n")
		}
		if b.Len() > 32<<10 {
			q.w.Write([]byte(b.String()))
			b.Reset()
		}
	}
	b.WriteString("</ul>\n")
	q.w.Write([]byte(b.String()))
}

// htmlHref makes an escaped href safe in a double-quoted HTML attribute by
// percent-encoding, never with character references: lftp takes its
// listings from these pages and does not decode &#39; (or the others), so a
// name with an apostrophe could not be fetched.
func htmlHref(href string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(href); i++ {
		switch c := href[i]; c {
		case '\'', '"', '&', '<', '>':
			if b == nil {
				b = append(make([]byte, 0, len(href)+8), href[:i]...)
			}
			b = append(b, '%', hex[c>>4], hex[c&15])
		default:
			if b != nil {
				b = append(b, c)
			}
		}
	}
	if b == nil {
		return href
	}
	return string(b)
}

// displayName is name as an HTML listing shows it: control characters (C0,
// DEL and C1), which a terminal or a browser may act on, and bytes that are
// not UTF-8 become U+FFFD.
func displayName(name string) string {
	clean := true
	for _, r := range name {
		if isControl(r) || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return name
	}
	var b strings.Builder
	for _, r := range name { // an invalid byte comes as utf8.RuneError
		if isControl(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || 0x7f <= r && r <= 0x9f }

func unescapeHref(href string) string {
	out, err := url.PathUnescape(href)
	if err != nil {
		return href
	}
	return out
}
