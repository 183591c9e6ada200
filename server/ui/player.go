package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/attachd/attachd/server/index"
	"github.com/attachd/attachd/server/store"
)

// Bounds of the metadata panel: a client may have stored any JSON.
const (
	maxFields     = 200
	maxFieldValue = 1000
)

// target returns the store key the request's p parameter names below the
// user's root, and that parameter as a key relative to it. CanonicalPath
// is the one place a path becomes a key: nothing gets out of the root.
func target(r *http.Request, s *session) (key, rel string, err error) {
	p := r.URL.Query().Get("p")
	if r.Method == http.MethodPost {
		p = r.PostForm.Get("p")
	}
	rel, err = store.CanonicalPath(p)
	if err != nil {
		return "", "", err
	}
	if rel == "" {
		return "", "", fmt.Errorf("%w: p: name a message", store.ErrInvalidKey)
	}
	return s.user.Key(rel), rel, nil
}

// section is one source of a message's metadata (recording.Sources).
type section struct {
	Title  string
	Fields [][2]string
}

func (h *Handler) player(w http.ResponseWriter, r *http.Request, s *session) {
	key, rel, err := target(r, s)
	if err != nil {
		h.failErr(w, r, s, err)
		return
	}
	o, err := h.st.Stat(r.Context(), key)
	if err != nil {
		h.failErr(w, r, s, err)
		return
	}
	p := url.Values{"p": {rel}}.Encode()
	data := map[string]any{
		"Path": store.UnescapeKey(rel), "Object": o, "Rec": index.Describe(o),
		"Media":    Prefix + "media?" + p,
		"Download": Prefix + "media?" + p + "&download=1",
		"Delete":   Prefix + "delete?" + p,
		"Move":     Prefix + "move?" + p,
		"Audio":    strings.HasPrefix(mediaType(o.ContentType), "audio/"),
		"Sections": metadataSections(o.Meta),
	}
	h.render(w, r, s, http.StatusOK, "player", data)
}

// metadataSections lays out a stored object's metadata: the fields of the
// Kazoo document (and its metadata), the fetch and store queries. Values
// are text; html/template escapes them.
func metadataSections(meta json.RawMessage) []section {
	var m map[string]any
	if json.Unmarshal(meta, &m) != nil {
		return nil
	}
	var out []section
	add := func(title string, src map[string]any) {
		if len(src) == 0 {
			return
		}
		sec := section{Title: title}
		keys := make([]string, 0, len(src))
		for k := range src {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if k == "metadata" && title == "Kazoo document" {
				continue // its own section
			}
			if len(sec.Fields) == maxFields {
				sec.Fields = append(sec.Fields, [2]string{"…", fmt.Sprintf("%d more fields", len(keys)-maxFields)})
				break
			}
			sec.Fields = append(sec.Fields, [2]string{truncate(k, 200), truncate(fieldText(src[k]), maxFieldValue)})
		}
		out = append(out, sec)
	}
	if doc, ok := m["document"].(map[string]any); ok {
		add("Kazoo document", doc)
		if dm, ok := doc["metadata"].(map[string]any); ok {
			add("Document metadata", dm)
		}
	}
	if fq, ok := m["fetch_query"].(map[string]any); ok {
		add("Fetch query", fq)
	}
	if sq, ok := m["store_query"].(map[string]any); ok {
		add("Store query", sq)
	}
	return out
}

func fieldText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

func mediaType(ct string) string {
	t, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return t
}

// inlineTypes are the types the browser may show in place; anything else
// is sent as a download of application/octet-stream, so that no stored file
// is ever rendered as a page.
func inlineType(t string) bool {
	switch {
	case strings.HasPrefix(t, "audio/"), strings.HasPrefix(t, "video/"):
		return true
	}
	switch t {
	case "application/pdf", "image/png", "image/jpeg", "image/gif", "image/tiff":
		return true
	}
	return false
}

// media streams an object's bytes with ranges, so that the player seeks;
// http.ServeContent copies a local blob with sendfile.
func (h *Handler) media(w http.ResponseWriter, r *http.Request, s *session) {
	key, _, err := target(r, s)
	if err != nil {
		h.failErr(w, r, s, err)
		return
	}
	f, o, err := h.st.Open(r.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		h.fail(w, r, s, http.StatusNotFound, "no such message")
		return
	}
	if err != nil {
		h.failErr(w, r, s, err)
		return
	}
	defer f.Close()
	hd := w.Header()
	t := mediaType(o.ContentType)
	disposition := "inline"
	if !inlineType(t) {
		t, disposition = "application/octet-stream", "attachment"
	}
	if r.URL.Query().Get("download") != "" {
		disposition = "attachment"
	}
	name := path.Base("/" + store.UnescapeKey(key))
	hd.Set("Content-Type", t)
	hd.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": name}))
	hd.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("ETag", o.ETag())
	hd.Set("Cache-Control", "private, no-cache")
	http.ServeContent(w, r, "", o.ModTime, f)
}
