package dav

import (
	"context"
	"mime"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/attachd/attachd/server/recording"
	"github.com/attachd/attachd/server/store"
)

// viewName is the top folder of the read-only view that names recordings
// for people: @by-date/<account>/<YYYY-MM-DD>/<HH.MM.SS> <caller> → <mailbox>.<ext>.
// Kazoo's own keys are hex ids (docs/kazoo.md §2).
const viewName = "@by-date"

// viewPath is a position in the view, decoded.
type viewPath struct {
	level   int // 0 the view's root, 1 an account, 2 a day, 3 a file; 4+ nothing
	account string
	day     string
	name    string
}

func parseViewPath(rel string) (*viewPath, bool) {
	segs := strings.Split(rel, "/")
	if store.UnescapeSegment(segs[0]) != viewName {
		return nil, false
	}
	v := &viewPath{level: len(segs) - 1}
	for i, s := range segs[1:] {
		s = store.UnescapeSegment(s)
		switch i {
		case 0:
			v.account = s
		case 1:
			v.day = s
		case 2:
			v.name = s
		}
	}
	return v, true
}

// viewEntry is one file of the view.
type viewEntry struct {
	name string
	at   time.Time
	obj  store.Object
}

// viewTree is the view of one user: account → day → files in name order.
type viewTree map[string]map[string][]viewEntry

// buildView reads the user's objects from the index and places each object
// Kazoo stored (it has metadata or ids) in the view. Times are in the
// server's local time zone (TZ), which is what operators read their call
// logs in. With account set, only that account's objects are kept.
func (q *request) buildView(account string) (viewTree, error) {
	tree := viewTree{}
	err := q.h.st.WalkObjects(q.r.Context(), q.u.Root, func(o store.Object) error {
		if len(o.Meta) <= 2 && o.DocID == "" && o.MediaID == "" {
			return nil // written over WebDAV, not by Kazoo
		}
		// The view is kept for every object of the tree, and shows no
		// dead properties: it is read-only and its files are aliases.
		// Keeping them would hold max_props_bytes per object.
		o.Props = nil
		s := recording.Summarize(o.Meta)
		acct := safeName(firstNonEmpty(s.AccountID, accountFromKey(o.Key)), 64)
		if account != "" && acct != account {
			return nil
		}
		at := s.Timestamp
		if at.IsZero() {
			at = o.ModTime
		}
		at = at.Local()
		caller := firstNonEmpty(s.CallerIDName, firstNonEmpty(s.CallerIDNumber, firstNonEmpty(s.From, "unknown")))
		mailbox := firstNonEmpty(s.Mailbox, firstNonEmpty(s.To, "unknown"))
		name := at.Format("15.04.05") + " " + safeName(caller, 60) + " → " + safeName(mailbox, 60) + "." + extension(o)
		days := tree[acct]
		if days == nil {
			days = map[string][]viewEntry{}
			tree[acct] = days
		}
		day := at.Format("2006-01-02")
		days[day] = append(days[day], viewEntry{name: name, at: at, obj: o})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, days := range tree {
		for day, es := range days {
			days[day] = dedupe(es)
		}
	}
	return tree, nil
}

// dedupe gives entries with the same name a " (2)", " (3)"… before the
// extension, in time then key order, and sorts them by name.
func dedupe(es []viewEntry) []viewEntry {
	sort.Slice(es, func(i, j int) bool {
		if !es[i].at.Equal(es[j].at) {
			return es[i].at.Before(es[j].at)
		}
		return es[i].obj.Key < es[j].obj.Key
	})
	seen := map[string]bool{}
	for i := range es {
		name := es[i].name
		if seen[strings.ToLower(name)] {
			ext := path.Ext(name)
			base := strings.TrimSuffix(name, ext)
			for n := 2; ; n++ {
				c := base + " (" + strconv.Itoa(n) + ")" + ext
				if !seen[strings.ToLower(c)] {
					name = c
					break
				}
			}
		}
		// Windows and macOS compare names case-insensitively.
		seen[strings.ToLower(name)] = true
		es[i].name = name
	}
	sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
	return es
}

// accountFromKey finds the Kazoo account id in a key (recording.AccountFromKey).
func accountFromKey(key string) string {
	if a := recording.AccountFromKey(key); a != "" {
		return a
	}
	return "unknown-account"
}

// extension returns the file extension for an object in the view: its key's,
// else its type's.
func extension(o store.Object) string {
	if e := path.Ext(lastSegment(o.Key)); len(e) > 1 && len(e) <= 6 {
		return safeName(strings.ToLower(e[1:]), 5)
	}
	if exts, _ := mime.ExtensionsByType(o.ContentType); len(exts) > 0 {
		return exts[0][1:]
	}
	switch {
	case strings.Contains(o.ContentType, "mpeg"):
		return "mp3"
	case strings.Contains(o.ContentType, "wav"):
		return "wav"
	}
	return "bin"
}

// safeName makes s usable in a file name on Windows and macOS: no path
// separators, no characters Windows forbids (<>:"/\|?*), no control
// characters, no trailing dot or space, at most max runes.
func safeName(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			break
		}
		switch {
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			r = '_'
		case strings.ContainsRune(`<>:"/\|?*`, r):
			r = '_'
		}
		b.WriteRune(r)
		n++
	}
	out := strings.TrimRight(strings.TrimSpace(b.String()), ". ")
	if out == "" {
		return "_"
	}
	base, _, _ := strings.Cut(out, ".")
	if windowsReserved[strings.ToUpper(strings.TrimSpace(base))] {
		out = "_" + out // Windows cannot open a file called CON, NUL.mp3, …
	}
	return out
}

var windowsReserved = map[string]bool{"CON": true, "PRN": true, "AUX": true, "NUL": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true}

// viewRoot is the @by-date collection as a child of the user's root.
func (q *request) viewRoot() *resource {
	return &resource{href: q.h.relHref(store.EscapeSegment(viewName), true), dir: true, virtual: true, name: viewName}
}

// viewChildren returns the view resource at v and, at depth 1, its members.
func (q *request) viewResources(v *viewPath, depth int) (*resource, []resource, error) {
	if v.level > 3 {
		return nil, nil, store.ErrNotFound
	}
	tree, err := q.h.lists.view(context.WithoutCancel(q.r.Context()), q.u.Root, v.account,
		func() (viewTree, error) { return q.buildView(v.account) })
	if err != nil {
		return nil, nil, err
	}
	base := q.h.relHref(store.EscapeSegment(viewName), true)
	dirRes := func(href, name string) resource {
		return resource{href: href, dir: true, virtual: true, name: name}
	}
	switch v.level {
	case 0:
		self := dirRes(base, viewName)
		var kids []resource
		if depth == 1 {
			for _, a := range sortedKeys(tree) {
				kids = append(kids, dirRes(q.childHref(base, store.EscapeSegment(a), true), a))
			}
		}
		return &self, kids, nil
	case 1:
		days, ok := tree[v.account]
		if !ok {
			return nil, nil, store.ErrNotFound
		}
		href := q.childHref(base, store.EscapeSegment(v.account), true)
		self := dirRes(href, v.account)
		var kids []resource
		if depth == 1 {
			for _, d := range sortedKeys(days) {
				kids = append(kids, dirRes(q.childHref(href, d, true), d))
			}
		}
		return &self, kids, nil
	}
	es, ok := tree[v.account][v.day]
	if !ok {
		return nil, nil, store.ErrNotFound
	}
	href := q.childHref(q.childHref(base, store.EscapeSegment(v.account), true), store.EscapeSegment(v.day), true)
	fileRes := func(e viewEntry) resource {
		return resource{href: q.childHref(href, store.EscapeSegment(e.name), false), key: e.obj.Key,
			obj: e.obj, virtual: true, name: e.name}
	}
	if v.level == 3 {
		for _, e := range es {
			if e.name == v.name {
				r := fileRes(e)
				return &r, nil, nil
			}
		}
		return nil, nil, store.ErrNotFound
	}
	self := dirRes(href, v.day)
	var kids []resource
	if depth == 1 {
		for _, e := range es {
			kids = append(kids, fileRes(e))
		}
	}
	return &self, kids, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// propfindView answers PROPFIND inside the view.
func (q *request) propfindView(pf propfindReq, depth int) error {
	self, kids, err := q.viewResources(q.view, depth)
	if err != nil {
		return err
	}
	pc, err := q.propCtx(propfindReq{}, "", false)
	if err != nil {
		return err
	}
	m := newMultistatus(q.w)
	pc.write(m, self, pf)
	for i := range kids {
		pc.write(m, &kids[i], pf)
		if len(m.b) > 32<<10 {
			if m.flush() != nil {
				return nil // the client went away
			}
		}
	}
	m.close()
	return nil
}

// getView answers GET and HEAD inside the view: a file's bytes (the same
// object, the same ETag) or a folder's HTML index.
func (q *request) getView() error {
	self, kids, err := q.viewResources(q.view, 1)
	if err != nil {
		return err
	}
	if !self.dir {
		f, o, err := q.h.st.Open(q.r.Context(), self.obj.Key)
		if err != nil {
			return err
		}
		defer f.Close()
		q.serveObject(f, o)
		return nil
	}
	entries := make([]listEntry, 0, len(kids))
	for _, k := range kids {
		entries = append(entries, listEntry{Entry: store.Entry{Name: store.EscapeSegment(k.name), IsDir: k.dir, Object: k.obj}})
	}
	q.writeListing(self.href, entries, false)
	return nil
}
