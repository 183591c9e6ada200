package dav

import (
	"errors"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/attachd/attachd/server/store"
)

// get answers GET and HEAD: an object's bytes, with ranges, or a small HTML
// index for a collection.
func (q *request) get() {
	if q.view != nil {
		q.getView()
		return
	}
	f, o, err := q.h.st.Open(q.r.Context(), q.key)
	if errors.Is(err, store.ErrNotFound) {
		res, err := q.stat()
		if err != nil {
			q.fail(err)
			return
		}
		q.listing(&res)
		return
	}
	if err != nil {
		q.fail(err)
		return
	}
	defer f.Close()
	q.serveObject(f, o)
}

// serveObject sends an object's bytes. The Content-Type is the stored one,
// so http.ServeContent never sniffs; the ETag is the same strong tag PUT
// answered and PROPFIND lists, so If-Range and If-None-Match work with it.
// Ranges are honoured here, on the WebDAV side only: the Kazoo route never
// answers 206 (kazoo-contract §4).
func (q *request) serveObject(f store.ReadSeekCloser, o store.Object) {
	h := q.w.Header()
	h.Set("ETag", o.ETag())
	h.Set("Content-Type", contentType(o))
	http.ServeContent(q.w, q.r, "", o.ModTime, f)
}

// listing answers GET on a collection with a plain HTML index rather than
// x/net/webdav's 405 (webdav-anchors §3.10): a browser pointed at a share
// link then shows the files, and their links download them. It reads the one
// index listing PROPFIND reads and is streamed the same way.
func (q *request) listing(res *resource) {
	if !res.dir {
		q.fail(store.ErrNotFound)
		return
	}
	kids, err := q.h.st.List(q.r.Context(), q.key)
	if err != nil {
		q.fail(err)
		return
	}
	q.writeListing(res.href, kids, q.rel == "" && q.h.opts.ByDate)
}

func (q *request) writeListing(href string, kids []store.Entry, withView bool) {
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	q.w.Header().Set("Content-Security-Policy", "default-src 'none'")
	if q.r.Method == http.MethodHead {
		q.w.WriteHeader(http.StatusOK)
		return
	}
	var b strings.Builder
	title := html.EscapeString(unescapeHref(href))
	b.WriteString("<!doctype html>\n<meta charset=utf-8>\n<title>" + title + "</title>\n<h1>" + title + "</h1>\n<ul>\n")
	if withView {
		b.WriteString(`<li><a href="` + html.EscapeString(q.childHref(href, viewName, true)) + `">` + viewName + "/</a>\n")
	}
	for _, e := range kids {
		name := store.UnescapeSegment(e.Name)
		if q.h.opts.HideJunk == JunkHide && isJunk(name) {
			continue
		}
		link := q.childHref(href, e.Name, e.IsDir)
		b.WriteString(`<li><a href="` + html.EscapeString(link) + `">` + html.EscapeString(name))
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

func unescapeHref(href string) string {
	out, err := url.PathUnescape(href)
	if err != nil {
		return href
	}
	return out
}
