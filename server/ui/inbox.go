package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/attachd/attachd/server/index"
	"github.com/attachd/attachd/server/recording"
	"github.com/attachd/attachd/server/store"
)

// maxField bounds each search field: a caller's name or number, a mailbox,
// an account id or a content type is far shorter.
const maxField = 200

// kinds are the inbox's tabs: the Kazoo document types and their names.
var kinds = []struct{ Value, Name string }{
	{"", "All"}, {recording.Voicemail, "Voicemails"}, {recording.CallRecording, "Recordings"}, {recording.Fax, "Faxes"},
}

// filter is the inbox's query string: what a shared URL names.
type filter struct {
	Caller, Account, Mailbox, Kind, Type string
	From, To                             string // dates, YYYY-MM-DD, in the browser's time zone
	TZ                                   int    // the browser's offset from UTC, in minutes east
	Before                               string // the cursor of the page's predecessor's last row
}

// parseFilter reads and checks the inbox's query; a bad value is an error
// naming its field.
func parseFilter(v url.Values) (filter, error) {
	f := filter{Caller: strings.TrimSpace(v.Get("q")), Account: v.Get("account"), Mailbox: v.Get("mailbox"),
		Kind: v.Get("kind"), Type: strings.TrimSpace(v.Get("type")), From: v.Get("from"), To: v.Get("to"),
		Before: v.Get("before")}
	for name, s := range map[string]string{"q": f.Caller, "account": f.Account, "mailbox": f.Mailbox, "type": f.Type} {
		if len(s) > maxField {
			return f, fmt.Errorf("%s: at most %d bytes", name, maxField)
		}
	}
	switch f.Kind {
	case "", recording.Voicemail, recording.CallRecording, recording.Fax:
	default:
		return f, fmt.Errorf("kind: want %s, %s or %s, got %q", recording.Voicemail, recording.CallRecording, recording.Fax, f.Kind)
	}
	if tz := v.Get("tz"); tz != "" {
		n, err := strconv.Atoi(tz)
		if err != nil || n < -14*60 || n > 14*60 {
			return f, fmt.Errorf("tz: want minutes east of UTC, -840 to 840, got %q", tz)
		}
		f.TZ = n
	}
	return f, nil
}

// query turns the filter into an index query below the user's root.
func (f filter) query(root string, limit int) (index.Query, error) {
	q := index.Query{Under: root, Caller: f.Caller, Account: f.Account, Mailbox: f.Mailbox, Kind: f.Kind,
		ContentType: f.Type, Limit: limit + 1} // one more: is there a next page?
	loc := time.FixedZone("browser", f.TZ*60)
	for _, d := range []struct {
		name, v string
		t       *time.Time
		days    int
	}{{"from", f.From, &q.Since, 0}, {"to", f.To, &q.Until, 1}} {
		if d.v == "" {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02", d.v, loc)
		if err != nil {
			return q, fmt.Errorf("%s: want a date, YYYY-MM-DD, got %q", d.name, d.v)
		}
		*d.t = t.AddDate(0, 0, d.days) // "to" is the whole day
	}
	if f.Before != "" {
		c, err := parseCursor(f.Before, root)
		if err != nil {
			return q, err
		}
		q.After = &c
	}
	return q, nil
}

// cursor renders a row's position for the next page's URL, its key
// relative to the user's root.
func cursor(h index.Hit, rel string) string {
	return strconv.FormatInt(h.At.UnixNano(), 10) + "." + rel
}

func parseCursor(s, root string) (index.Cursor, error) {
	at, rel, ok := strings.Cut(s, ".")
	n, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil {
		return index.Cursor{}, fmt.Errorf("before: malformed page cursor %q", s)
	}
	key, err := store.CanonicalPath(rel)
	if err != nil || key != rel {
		return index.Cursor{}, fmt.Errorf("before: malformed page cursor %q", s)
	}
	if root != "" {
		key = root + "/" + key
	}
	return index.Cursor{At: time.Unix(0, n), Key: key}, nil
}

// values renders the filter as a query string, with the changes given
// (name, value pairs; an empty value drops the field).
func (f filter) values(changes ...string) url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("q", f.Caller)
	set("account", f.Account)
	set("mailbox", f.Mailbox)
	set("kind", f.Kind)
	set("type", f.Type)
	set("from", f.From)
	set("to", f.To)
	if f.From != "" || f.To != "" {
		v.Set("tz", strconv.Itoa(f.TZ))
	}
	for i := 0; i+1 < len(changes); i += 2 {
		v.Del(changes[i])
		set(changes[i], changes[i+1])
	}
	return v
}

// Link returns the inbox's URL for the filter with changes (see values).
func (f filter) Link(changes ...string) string {
	if q := f.values(changes...).Encode(); q != "" {
		return Prefix + "?" + q
	}
	return Prefix
}

// row is one message of the inbox.
type row struct {
	index.Hit
	Path string // as the user sees it, below its root
	Play string // the player's URL
}

// group is an account or a mailbox in the inbox's side list.
type group struct {
	index.Group
	Name     string
	Link     string
	Selected bool
}

func (h *Handler) inbox(w http.ResponseWriter, r *http.Request, s *session) {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		h.fail(w, r, s, http.StatusBadRequest, err.Error())
		return
	}
	q, err := f.query(s.user.Root, h.pageSize)
	if err != nil {
		h.fail(w, r, s, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	hits, err := h.st.Search(ctx, q)
	if err != nil {
		h.failErr(w, r, s, err)
		return
	}
	data := map[string]any{"F": f, "Kinds": kinds, "Done": doneMessages[r.URL.Query().Get("done")],
		"First": f.Before == "", "Newest": f.Link("before", "")}
	if len(hits) > h.pageSize {
		hits = hits[:h.pageSize]
		last := hits[len(hits)-1]
		rel, _ := s.user.Inside(last.Key)
		data["Older"] = f.Link("before", cursor(last, rel))
	}
	rows := make([]row, len(hits))
	for i, hit := range hits {
		rel, _ := s.user.Inside(hit.Key)
		rows[i] = row{Hit: hit, Path: store.UnescapeKey(rel), Play: Prefix + "play?" + url.Values{"p": {rel}}.Encode()}
	}
	data["Rows"] = rows
	if data["Accounts"], err = h.groups(r, s, f, ""); err != nil {
		h.failErr(w, r, s, err)
		return
	}
	if f.Account != "" {
		if data["Mailboxes"], err = h.groups(r, s, f, f.Account); err != nil {
			h.failErr(w, r, s, err)
			return
		}
	}
	h.render(w, r, s, http.StatusOK, "inbox", data)
}

// groups lists the accounts, or with account set its mailboxes, as links
// that narrow the inbox.
func (h *Handler) groups(r *http.Request, s *session, f filter, account string) ([]group, error) {
	gs, err := h.st.Groups(r.Context(), s.user.Root, account)
	if err != nil {
		return nil, err
	}
	out := make([]group, len(gs))
	for i, g := range gs {
		out[i] = group{Group: g, Name: g.Value}
		if account == "" {
			out[i].Link = f.Link("account", g.Value, "mailbox", "", "before", "")
			out[i].Selected = g.Value == f.Account
		} else {
			out[i].Link = f.Link("mailbox", g.Value, "before", "")
			out[i].Selected = g.Value == f.Mailbox
		}
		if g.Value == "" {
			out[i].Name = "(none)"
		}
	}
	return out, nil
}

// doneMessages are what the inbox says after a change, by the done
// parameter's value: fixed texts, never the parameter itself.
var doneMessages = map[string]string{
	"deleted": "The message was deleted.",
	"moved":   "The message was moved.",
}
