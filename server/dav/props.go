package dav

import (
	"encoding/json"
	"encoding/xml"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"time"

	"github.com/attachd/attachd/server/recording"
	"github.com/attachd/attachd/server/store"
)

// resource is what a PROPFIND response describes: an object or a folder of
// the store, or an entry of the @by-date view (virtual), with everything
// needed already read from the index.
type resource struct {
	href    string
	key     string // store key; for a virtual folder, ""
	dir     bool
	virtual bool
	name    string       // display name of a virtual resource
	obj     store.Object // !dir
	d       store.Dir    // dir
}

// propCtx is what properties need beyond the resource, computed once per request.
type propCtx struct {
	locks      []store.Lock // live locks on or below the PROPFIND target
	hrefOf     func(key string) string
	quotaAvail uint64
	quotaUsed  uint64
	quotaOK    bool
	// quotaOf, if set, gives a folder's quota ([[quota]], a user's
	// quota_bytes): under one, the properties show it, not the disk.
	quotaOf     func(key string) (avail, used uint64, ok bool)
	nowForLocks time.Time
	maxRawProps int // Handler.maxRawProps
	log         *slog.Logger
}

// deadProps returns the dead properties to show for r: none if they take
// more room than the limits allow, which only properties stored before the
// limits can.
func (pc *propCtx) deadProps(r *resource) []deadProp {
	raw := r.props()
	if len(raw) > pc.maxRawProps {
		pc.log.Warn("dead properties over the limits left out of PROPFIND; PROPPATCH can remove them",
			"key", store.UnescapeKey(r.key), "size", len(raw))
		return nil
	}
	return deadProps(raw)
}

var (
	pnResourceType  = xml.Name{Space: nsDAV, Local: "resourcetype"}
	pnContentLength = xml.Name{Space: nsDAV, Local: "getcontentlength"}
	pnContentType   = xml.Name{Space: nsDAV, Local: "getcontenttype"}
	pnETag          = xml.Name{Space: nsDAV, Local: "getetag"}
	pnLastModified  = xml.Name{Space: nsDAV, Local: "getlastmodified"}
	pnCreationDate  = xml.Name{Space: nsDAV, Local: "creationdate"}
	pnSupportedLock = xml.Name{Space: nsDAV, Local: "supportedlock"}
	pnLockDiscovery = xml.Name{Space: nsDAV, Local: "lockdiscovery"}
	pnQuotaAvail    = xml.Name{Space: nsDAV, Local: "quota-available-bytes"}
	pnQuotaUsed     = xml.Name{Space: nsDAV, Local: "quota-used-bytes"}
)

// liveDAV are the DAV: properties the server computes; clients cannot set
// them (RFC 4918 §15: protected). getlastmodified is settable, see proppatch.
var liveDAV = map[string]bool{
	"resourcetype": true, "getcontentlength": true, "getcontenttype": true, "getetag": true,
	"creationdate": true, "supportedlock": true, "lockdiscovery": true,
	"quota-available-bytes": true, "quota-used-bytes": true, "getlastmodified": true,
}

// kazooProps are the attachd-namespace live properties, in output order.
var kazooProps = []string{"caller-id-name", "caller-id-number", "from", "to", "mailbox",
	"timestamp", "length", "folder", "media-id", "doc-id", "account-id"}

func kazooValues(meta json.RawMessage, mediaID, docID string) map[string]string {
	if len(meta) <= 2 && mediaID == "" && docID == "" {
		return nil
	}
	s := recording.Summarize(meta)
	v := map[string]string{
		"caller-id-name": s.CallerIDName, "caller-id-number": s.CallerIDNumber,
		"from": s.From, "to": s.To, "mailbox": s.Mailbox, "folder": s.Folder,
		"media-id": firstNonEmpty(s.MediaID, mediaID), "doc-id": firstNonEmpty(s.DocID, docID),
		"account-id": s.AccountID,
	}
	if !s.Timestamp.IsZero() {
		v["timestamp"] = s.Timestamp.UTC().Format(time.RFC3339)
	}
	if s.Length > 0 {
		v["length"] = strconv.FormatInt(s.Length.Milliseconds(), 10) // ms, as Kazoo counts it
	}
	return v
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// contentType is the stored type: what the uploader declared, never sniffed
// (golang/go #22577). A WebDAV PUT without one gets the extension's type.
func contentType(o store.Object) string {
	if o.ContentType != "" {
		return o.ContentType
	}
	return typeByName(o.Key)
}

func typeByName(key string) string {
	if t := mime.TypeByExtension(path.Ext(lastSegment(key))); t != "" {
		return t
	}
	return "application/octet-stream"
}

// deadProps decodes the dead properties stored with a resource.
func deadProps(raw []byte) []deadProp {
	if len(raw) <= 2 { // "", "{}", "[]"
		return nil
	}
	var ps []deadProp
	if json.Unmarshal(raw, &ps) != nil {
		return nil
	}
	return ps
}

func (r *resource) props() []byte {
	if r.dir {
		return r.d.Props
	}
	return r.obj.Props
}

func (r *resource) modTime() time.Time {
	if r.dir {
		if r.d.ModTime == 0 {
			return time.Time{}
		}
		return time.Unix(0, r.d.ModTime)
	}
	return r.obj.ModTime
}

func (r *resource) created() time.Time {
	if r.dir {
		if r.d.Created == 0 {
			return time.Time{}
		}
		return time.Unix(0, r.d.Created)
	}
	return r.obj.Created
}

// appendLive appends the value of a live property and reports whether the
// resource has it.
func (pc *propCtx) appendLive(b []byte, r *resource, n xml.Name) ([]byte, bool) {
	switch n.Space {
	case NSAttachd:
		return appendKazooLive(b, r, n.Local)
	case nsDAV:
		return pc.appendDAVLive(b, r, n.Local)
	}
	return b, false
}

// appendKazooLive appends the value of an attachd-namespace property: one
// item of an object's Kazoo metadata.
func appendKazooLive(b []byte, r *resource, name string) ([]byte, bool) {
	if r.dir {
		return b, false
	}
	v := kazooValues(r.obj.Meta, r.obj.MediaID, r.obj.DocID)[name]
	if v == "" {
		return b, false
	}
	return appendEscaped(b, v), true
}

// appendDAVLive appends the value of a DAV: live property.
func (pc *propCtx) appendDAVLive(b []byte, r *resource, name string) ([]byte, bool) {
	switch name {
	case "resourcetype":
		if r.dir {
			b = append(b, "<D:collection/>"...)
		}
	case "displayname":
		name := lastSegment(r.key)
		if r.virtual {
			name = r.name
		}
		if name == "" {
			return b, false
		}
		b = appendEscaped(b, name)
	case "getcontentlength":
		if r.dir {
			return b, false
		}
		b = strconv.AppendInt(b, r.obj.Size, 10)
	case "getcontenttype":
		if r.dir {
			return b, false
		}
		b = appendEscaped(b, contentType(r.obj))
	case "getetag":
		if r.dir {
			return b, false
		}
		b = appendEscaped(b, r.obj.ETag())
	case "getlastmodified":
		t := r.modTime()
		if t.IsZero() {
			return b, false
		}
		b = t.UTC().AppendFormat(b, http.TimeFormat)
	case "creationdate":
		t := r.created()
		if t.IsZero() {
			return b, false
		}
		b = t.UTC().AppendFormat(b, time.RFC3339)
	case "supportedlock":
		if !r.virtual {
			b = append(b, supportedLock...)
		}
	case "lockdiscovery":
		b = pc.appendLockDiscovery(b, r)
	case "quota-available-bytes", "quota-used-bytes":
		return pc.appendQuota(b, r, name == "quota-used-bytes")
	default:
		return b, false
	}
	return b, true
}

// appendLockDiscovery appends the active locks that cover r. The view's
// resources cannot be locked.
func (pc *propCtx) appendLockDiscovery(b []byte, r *resource) []byte {
	if r.virtual {
		return b
	}
	for _, l := range pc.locks {
		if l.Covers(r.key) {
			b = appendActiveLock(b, l, pc.hrefOf(l.Root), pc.nowForLocks)
		}
	}
	return b
}

// appendQuota appends quota-used-bytes (used) or quota-available-bytes.
// RFC 4331 defines them on collections only, and davix reads a file's
// quota-used-bytes as its size.
func (pc *propCtx) appendQuota(b []byte, r *resource, used bool) ([]byte, bool) {
	if !r.dir || r.virtual {
		return b, false
	}
	avail, usedB, ok := pc.quotaAvail, pc.quotaUsed, pc.quotaOK
	if pc.quotaOf != nil {
		if a, u, found := pc.quotaOf(r.key); found {
			avail, usedB, ok = a, u, true
		}
	}
	if !ok {
		return b, false
	}
	v := avail
	if used {
		v = usedB
	}
	return strconv.AppendUint(b, v, 10), true
}

const supportedLock = `<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>` +
	`<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>`

// allLive are the live properties of an allprop answer (RFC 4918 §9.1:
// those the RFC defines; RFC 4331's quota properties are left out as it asks).
var allLive = []xml.Name{pnResourceType, pnContentLength, pnContentType, pnETag, pnLastModified,
	pnCreationDate, pnSupportedLock, pnLockDiscovery}

// appendProp appends one property element holding value.
func appendProp(b []byte, n xml.Name, value []byte) []byte {
	b = appendOpen(b, n)
	b = append(b, value...)
	return appendClose(b, n)
}

func appendOpen(b []byte, n xml.Name) []byte {
	switch n.Space {
	case nsDAV:
		b = append(b, "<D:"...)
		b = append(b, n.Local...)
	case NSAttachd:
		b = append(b, "<A:"...)
		b = append(b, n.Local...)
	default:
		b = append(b, '<')
		b = append(b, n.Local...)
		b = append(b, ` xmlns="`...)
		b = appendAttr(b, n.Space)
		b = append(b, '"')
	}
	return append(b, '>')
}

func appendClose(b []byte, n xml.Name) []byte {
	switch n.Space {
	case nsDAV:
		b = append(b, "</D:"...)
	case NSAttachd:
		b = append(b, "</A:"...)
	default:
		b = append(b, "</"...)
	}
	b = append(b, n.Local...)
	return append(b, '>')
}

func appendDead(b []byte, p deadProp) []byte {
	n := xml.Name{Space: p.NS, Local: p.Name}
	if p.Lang == "" {
		return appendProp(b, n, []byte(p.XML))
	}
	b = appendOpen(b, n)
	b = b[:len(b)-1]
	b = append(b, ` xml:lang="`...)
	b = appendAttr(b, p.Lang)
	b = append(b, `">`...)
	b = append(b, p.XML...)
	return appendClose(b, n)
}

// appendEmpty appends an empty property element, as propname and 404 propstats want.
func appendEmpty(b []byte, n xml.Name) []byte {
	b = appendOpen(b, n)
	return append(b[:len(b)-1], "/>"...)
}

func appendActiveLock(b []byte, l store.Lock, root string, now time.Time) []byte {
	b = append(b, "<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope>"...)
	if l.Shared {
		b = append(b, "<D:shared/>"...)
	} else {
		b = append(b, "<D:exclusive/>"...)
	}
	b = append(b, "</D:lockscope><D:depth>"...)
	if l.ZeroDepth {
		b = append(b, '0')
	} else {
		b = append(b, "infinity"...)
	}
	b = append(b, "</D:depth>"...)
	if l.Owner != "" {
		b = append(b, "<D:owner>"...)
		b = append(b, l.Owner...)
		b = append(b, "</D:owner>"...)
	}
	b = append(b, "<D:timeout>Second-"...)
	b = strconv.AppendInt(b, int64(max(l.Expires.Sub(now)/time.Second, 0)), 10)
	b = append(b, "</D:timeout><D:locktoken><D:href>"...)
	b = appendEscaped(b, l.Token)
	b = append(b, "</D:href></D:locktoken><D:lockroot><D:href>"...)
	b = appendEscaped(b, root)
	return append(b, "</D:href></D:lockroot></D:activelock>"...)
}
