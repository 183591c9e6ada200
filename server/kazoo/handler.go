// Package kazoo implements the Kazoo (2600Hz) `http` attachment handler
// contract (docs/kazoo.md): stores by PUT or POST, raw or multipart,
// optionally base64, and fetches by GET with Kazoo's URL shapes.
package kazoo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/attachd/attachd/server/auth"
	"github.com/attachd/attachd/server/recording"
	"github.com/attachd/attachd/server/status"
	"github.com/attachd/attachd/server/store"
)

// DefaultKeyParams are the query parameters whose values are part of the key,
// for storage URLs that carry the path in the query (docs/kazoo.md §2:
// `?path=/A/D/N`, `index.fu?key=abc123&recording=A/D/N`).
var DefaultKeyParams = []string{"path", "recording"}

// Handler serves Kazoo's stores and fetches. Its fields must not change once
// it serves.
type Handler struct {
	Store     *store.Store
	Base64    Base64Mode
	KeyParams []string // query parameters that extend the key; nil: DefaultKeyParams
	// MaxFetchMeta bounds the fetch query metadata kept per object, in
	// bytes of JSON; 0: DefaultMaxFetchMeta.
	MaxFetchMeta int64
	Log          *slog.Logger
}

// ServeHTTP answers PUT and POST (store) and GET and HEAD (fetch). The caller
// has authenticated the request and put the user in its context (auth.WithUser).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		h.store(w, r)
	case http.MethodGet, http.MethodHead:
		h.fetch(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// target returns the escaped path and the raw query of the request-target
// exactly as sent. Go's URL parsing would re-encode a path that mixes raw
// UTF-8 with %2F (docs/kazoo.md §5 "Path decoding", "Raw bytes"), and
// everything after the first '?' is the query, later '?' included (§4 step 4).
func target(r *http.Request) (path, query string) {
	uri := r.RequestURI
	if !strings.HasPrefix(uri, "/") {
		if i := strings.Index(uri, "://"); i >= 0 { // absolute-form
			rest := uri[i+3:]
			j := strings.IndexAny(rest, "/?")
			if j < 0 {
				return "/", ""
			}
			uri = rest[j:]
		}
	}
	path, query, _ = strings.Cut(uri, "?")
	return path, query
}

// requestKey returns the key a request names, relative to the user's root:
// the path's, extended by the first key parameter of the query.
func (h *Handler) requestKey(path string, params []Param) (string, error) {
	key, _, err := h.requestKeys(path, params)
	return key, err
}

// requestKeys returns the key a request names and, for a fetch whose key
// parameter Kazoo ≥ 4.3.106 doubled, the key it stored under. When the stored
// URL has a query, Kazoo glues the segment again onto it with no separator
// (docs/kazoo.md §4): "?path=/A/D/N" is fetched as "?path=/A/D/N?path=/A/D/N",
// "recording=A/D/N" as "recording=A/D/NA/D/N".
func (h *Handler) requestKeys(path string, params []Param) (key, undoubled string, err error) {
	key, err = store.CanonicalPath(path)
	if err != nil {
		return "", "", err
	}
	names := h.KeyParams
	if names == nil {
		names = DefaultKeyParams
	}
	for _, p := range params {
		if !slices.Contains(names, p.Key) || p.Value == "" {
			continue
		}
		full, err := joinValue(key, p.Value)
		if err != nil {
			return "", "", err
		}
		if v := undouble(p.Value); v != "" {
			undoubled, _ = joinValue(key, v)
		}
		return full, undoubled, nil
	}
	return key, "", nil
}

func joinValue(key, value string) (string, error) {
	segs := slices.DeleteFunc(strings.Split(value, "/"), func(s string) bool { return s == "" })
	return store.JoinKey(key, segs...)
}

// undouble returns the longest v, at most half of x, such that x starts and
// ends with v; "" if there is none.
func undouble(x string) string {
	for k := len(x) / 2; k > 0; k-- {
		if strings.HasSuffix(x, x[:k]) {
			return x[:k]
		}
	}
	return ""
}

func (h *Handler) hasKeyParam(params []Param) bool {
	names := h.KeyParams
	if names == nil {
		names = DefaultKeyParams
	}
	return slices.ContainsFunc(params, func(p Param) bool { return slices.Contains(names, p.Key) && p.Value != "" })
}

// errBadRequest marks errors that are the client's fault.
var errBadRequest = errors.New("bad request")

func (h *Handler) store(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u := auth.FromContext(ctx)
	if u == nil || !u.Write {
		http.Error(w, "this user may not store", http.StatusForbidden)
		return
	}
	path, rawQuery := target(r)
	params := ParseQuery(rawQuery)
	key, err := h.requestKey(path, params)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.Store.CheckSize(r.ContentLength); err != nil {
		h.fail(w, r, err)
		return
	}
	body := store.ClientBody(r.Body)
	meta := map[string]any{}
	if len(params) > 0 {
		meta["store_query"] = QueryToJSON(params)
	}
	var obj store.Object
	ct := r.Header.Get("Content-Type")
	boundary, isMultipart := BoundaryFromContentType(ct)
	if !isMultipart && strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "multipart/") {
		// Kazoo 4.3.17–4.3.20 sent multipart/mixed with no boundary parameter
		// (docs/kazoo.md §0): take it from the body's first delimiter line.
		br := bufio.NewReaderSize(body, 4096)
		body = br
		if boundary, isMultipart = sniffBoundary(br); !isMultipart {
			h.fail(w, r, fmt.Errorf("%w: %s body without a boundary", ErrMalformed, strings.Split(ct, ";")[0]))
			return
		}
	}
	if isMultipart {
		// field_list [] (docs/kazoo.md §2, HELP-14308): every store is POSTed to
		// the same base/, so the key comes from the document id and part name.
		byName := strings.HasSuffix(path, "/") && !h.hasKeyParam(params)
		obj, err = h.storeMultipart(ctx, u, key, byName, body, boundary, meta)
	} else {
		obj, err = h.storeRaw(ctx, u.Key(key), body, r, meta)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", obj.ETag())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"key": store.UnescapeKey(keyRel(u, obj.Key)), "size": obj.Size, "sha256": obj.SHA256})
}

// sniffBoundary reads the boundary from a multipart body's first delimiter
// line ("--B" after optional blank lines), without consuming anything.
func sniffBoundary(br *bufio.Reader) (string, bool) {
	peek, _ := br.Peek(1024)
	s := strings.TrimLeft(string(peek), "\r\n")
	line, _, found := strings.Cut(s, "\n")
	line = strings.TrimRight(line, "\r \t")
	if !found || !strings.HasPrefix(line, "--") || len(line) < 3 || len(line) > 72 || strings.ContainsAny(line[2:], " \t") {
		return "", false
	}
	return line[2:], true
}

func keyRel(u *auth.User, key string) string {
	k, _ := u.Inside(key)
	return k
}

func (h *Handler) storeRaw(ctx context.Context, key string, body io.Reader, r *http.Request, meta map[string]any) (store.Object, error) {
	if key == "" {
		return store.Object{}, fmt.Errorf("%w: no path to store at", errBadRequest)
	}
	// Over a quota: refused before the body is read.
	if err := h.Store.CheckQuota(ctx, key, r.ContentLength); err != nil {
		return store.Object{}, err
	}
	up, err := h.Store.Receive(body, r.ContentLength)
	if err != nil {
		return store.Object{}, err
	}
	defer up.Abort()
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	return up.Commit(ctx, key, store.Info{
		ContentType: ct, DocID: docIDFromKey(key), MediaID: docIDFromKey(key),
		Meta: marshalMeta(meta), Size: r.ContentLength,
	})
}

// maxJSONPart bounds the document part, which is read whole to be parsed.
const maxJSONPart = 1 << 20

func (h *Handler) storeMultipart(ctx context.Context, u *auth.User, key string, byName bool, body io.Reader, boundary string, meta map[string]any) (store.Object, error) {
	mr := NewMultipartReader(body, boundary)
	var doc map[string]any
	var up *store.Upload
	var mediaName, mediaType string
	defer func() {
		if up != nil {
			up.Abort()
		}
	}()
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return store.Object{}, err
		}
		// docs/kazoo.md §1.1: part 1 is the document as JSON, part 2 the
		// media. Names are unquoted tokens that strict parsers reject, so
		// parts are told apart by position and content type only.
		if i == 0 && up == nil && isJSON(part.ContentType) {
			b, err := io.ReadAll(io.LimitReader(part, maxJSONPart+1))
			if err != nil {
				return store.Object{}, err
			}
			if len(b) > maxJSONPart {
				return store.Object{}, fmt.Errorf("%w: JSON part larger than %d bytes", errBadRequest, maxJSONPart)
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				return store.Object{}, fmt.Errorf("%w: JSON part is not a JSON object: %v", errBadRequest, err)
			}
			continue
		}
		if up != nil {
			return store.Object{}, fmt.Errorf("%w: more than one media part", errBadRequest)
		}
		mediaName, mediaType = part.Name, part.ContentType
		if up, err = h.receiveMedia(part); err != nil {
			return store.Object{}, err
		}
	}
	if up == nil {
		return store.Object{}, fmt.Errorf("%w: multipart body has no media part", errBadRequest)
	}
	docID := recording.Field(doc, "id")
	if byName {
		var err error
		segs := slices.DeleteFunc([]string{docID, mediaName}, func(s string) bool { return s == "" })
		if len(segs) == 0 {
			return store.Object{}, fmt.Errorf("%w: no key: the URL ends in '/' and the parts carry no id or name", errBadRequest)
		}
		if key, err = store.JoinKey(key, segs...); err != nil {
			return store.Object{}, err
		}
	}
	if key == "" {
		return store.Object{}, fmt.Errorf("%w: no path to store at", errBadRequest)
	}
	if docID == "" {
		docID = docIDFromKey(key)
	}
	mediaID := docID
	if m, ok := doc["metadata"].(map[string]any); ok {
		if id := recording.Field(m, "media_id"); id != "" {
			mediaID = id
		}
	}
	if doc != nil {
		meta["document"] = doc
	}
	if mediaType == "" {
		mediaType = "application/octet-stream"
	}
	return up.Commit(ctx, u.Key(key), store.Info{
		ContentType: mediaType, DocID: docID, MediaID: mediaID,
		Meta: marshalMeta(meta), Size: -1, ModTime: recording.Time(meta),
	})
}

func isJSON(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(ct))
	return strings.HasPrefix(ct, "application/json") || strings.HasSuffix(strings.Split(ct, ";")[0], "+json")
}

// peekSize is how much of a media part auto mode reads before it decides.
const peekSize = 64 << 10

// receiveMedia writes a media part into a new upload, decoding base64 as the
// mode says. In auto mode a part that still looks like base64 after the first
// 64 KiB is written both as it came and decoded, until it either ends as valid
// base64 or stops looking like it: a raw recording almost always shows a byte
// outside the alphabet in its first bytes, so the double write is rare.
func (h *Handler) receiveMedia(part io.Reader) (*store.Upload, error) {
	switch h.Base64 {
	case Base64Never:
		return h.copyToUpload(part, false)
	case Base64Always:
		return h.copyToUpload(part, true)
	}
	br := bufio.NewReaderSize(part, peekSize)
	peek, err := br.Peek(peekSize)
	complete := err == io.EOF
	if err != nil && err != io.EOF {
		return nil, err
	}
	if !IsBase64Prefix(peek, complete) {
		return h.copyToUpload(br, false)
	}
	if complete {
		return h.copyToUpload(br, true)
	}
	raw, err := h.Store.NewUpload()
	if err != nil {
		return nil, err
	}
	dec, err := h.Store.NewUpload()
	if err != nil {
		raw.Abort()
		return nil, err
	}
	decW := NewBase64Writer(dec)
	buf := make([]byte, peekSize)
	for {
		n, rerr := br.Read(buf)
		if n > 0 {
			if _, err := raw.Write(buf[:n]); err != nil {
				raw.Abort()
				dec.Abort()
				return nil, err
			}
			if decW != nil {
				if _, err := decW.Write(buf[:n]); err != nil {
					dec.Abort()
					decW = nil
					if !errors.Is(err, ErrNotBase64) {
						raw.Abort()
						return nil, err
					}
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			raw.Abort()
			dec.Abort()
			return nil, rerr
		}
	}
	if decW != nil && decW.Close() == nil {
		raw.Abort()
		return dec, nil
	}
	dec.Abort()
	return raw, nil
}

func (h *Handler) copyToUpload(r io.Reader, decode bool) (*store.Upload, error) {
	up, err := h.Store.NewUpload()
	if err != nil {
		return nil, err
	}
	if !decode {
		_, err = io.Copy(up, r)
	} else {
		w := NewBase64Writer(up)
		if _, err = io.Copy(w, r); err == nil {
			err = w.Close()
		}
		if errors.Is(err, ErrNotBase64) {
			err = fmt.Errorf("%w: media part is not strict base64 ([kazoo] base64 = %q): %v", errBadRequest, h.Base64, err)
		}
	}
	if err != nil {
		up.Abort()
		return nil, err
	}
	return up, nil
}

func marshalMeta(meta map[string]any) json.RawMessage {
	if len(meta) == 0 {
		return nil
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return nil // cannot happen: the values came from JSON and queries
	}
	return b
}

// kazooID matches Kazoo document ids: 32 hex digits, MODB ids prefixed with YYYYMM-.
var kazooID = regexp.MustCompile(`^([0-9]{6}-)?[0-9a-f]{32}$`)

// docIDFromKey guesses the Kazoo document id of a raw store, which carries
// no document: with the default field list the key ends in .../<doc id>/<attachment>.
func docIDFromKey(key string) string {
	parent, _ := store.Split(key)
	_, id := store.Split(parent)
	if kazooID.MatchString(id) {
		return id
	}
	return ""
}

// fail answers err with the status Kazoo should see; only codes from Kazoo's
// mapped list are used (docs/kazoo.md §5).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := Status(err)
	if code >= 500 {
		h.Log.Error("kazoo request failed", "method", r.Method, "uri", r.RequestURI, "err", err)
	} else {
		h.Log.Debug("kazoo request refused", "method", r.Method, "uri", r.RequestURI, "status", code, "err", err)
	}
	http.Error(w, msg, code)
}

// Status maps an error to a status code and a short message for the client:
// the Kazoo contract's own errors, then the store's (server/status), held
// to the codes Kazoo's storage handler maps (docs/kazoo.md §5).
func Status(err error) (int, string) {
	switch {
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrNotBase64), errors.Is(err, errBadRequest):
		return http.StatusBadRequest, err.Error()
	}
	code, msg := status.Of(err)
	switch code {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge,
		http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusInsufficientStorage:
		return code, msg
	case http.StatusLocked, http.StatusPreconditionFailed:
		// A WebDAV lock or an existing folder in the way of a Kazoo store.
		return http.StatusConflict, msg
	case http.StatusRequestTimeout:
		return http.StatusBadRequest, msg
	}
	return http.StatusInternalServerError, "internal error; see the server log"
}

// fetch answers a GET or HEAD with the exact bytes of the object the URL
// names, resolved as docs/kazoo.md §4 requires.
func (h *Handler) fetch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u := auth.FromContext(ctx)
	path, rawQuery := target(r)
	params := ParseQuery(rawQuery)
	key, undoubled, err := h.requestKeys(path, params)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if undoubled != "" {
		undoubled = u.Key(undoubled)
	}
	base, _ := store.CanonicalPath(path)
	o, err := h.resolve(ctx, u, u.Key(key), undoubled, u.Key(base), params)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := h.Store.OpenVersion(o)
	if errors.Is(err, store.ErrNotFound) { // replaced since resolved
		f, o, err = h.Store.Open(ctx, o.Key)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer f.Close()
	if u.Write && len(params) > 0 {
		h.mergeFetchQuery(ctx, o, params)
	}
	hd := w.Header()
	hd.Set("Content-Type", o.ContentType)
	hd.Set("Content-Length", strconv.FormatInt(o.Size, 10))
	hd.Set("ETag", o.ETag())
	hd.Set("Last-Modified", o.ModTime.UTC().Format(http.TimeFormat))
	// Always 200 with the whole body: Kazoo takes only 200 as success and
	// crashes on 206 or 304 (docs/kazoo.md §5), and it never asks for ranges.
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	var src io.Reader = f
	if file, ok := f.(*os.File); ok {
		src = file // *os.File in a LimitedReader lets net/http use sendfile
	}
	if _, err := io.CopyN(w, src, o.Size); err != nil {
		h.Log.Debug("fetch cut short", "key", store.UnescapeKey(o.Key), "err", err)
	}
}

// resolve finds the object a fetch names: the exact key, or the key of a
// doubled key parameter; else the longest stored key that is a prefix of it
// on a segment boundary, since Kazoo ≥ 4.3.106 appends the segment again
// (docs/kazoo.md §4); else the object whose media id or document id the
// query gives (field_list [], §4), preferably one below the URL's path.
func (h *Handler) resolve(ctx context.Context, u *auth.User, key, undoubled, base string, params []Param) (store.Object, error) {
	inside := func(o store.Object) bool { _, ok := u.Inside(o.Key); return ok }
	if key != "" {
		for _, k := range []string{key, undoubled} {
			if k == "" {
				continue
			}
			if o, err := h.Store.Stat(ctx, k); err == nil {
				return o, nil
			} else if !errors.Is(err, store.ErrNotFound) {
				return o, err
			}
		}
		if o, err := h.Store.LongestPrefix(ctx, key); err == nil && inside(o) {
			return o, nil
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return o, err
		}
		// Not in the index: another attachd sharing the remote backend may
		// have stored it. Only misses pay for asking the backend.
		for _, k := range []string{key, undoubled} {
			if k == "" {
				continue
			}
			if o, err := h.Store.Discover(ctx, k); err == nil && inside(o) {
				return o, nil
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return o, err
			}
		}
		if o, err := h.Store.DiscoverPrefix(ctx, key); err == nil && inside(o) {
			return o, nil
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return o, err
		}
	}
	for _, name := range []string{"media_id", "id"} {
		for _, p := range params {
			if p.Key != name || p.Value == "" {
				continue
			}
			o, err := h.Store.FindByID(ctx, p.Value, base)
			if err == nil && inside(o) {
				return o, nil
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return o, err
			}
		}
	}
	return store.Object{}, store.ErrNotFound
}
