// Package recording reads what Kazoo's metadata says about a stored
// voicemail, call recording or fax: who called whom, when, for how long. The
// Kazoo route writes that metadata; the WebDAV drive and the @by-date view
// show it. It depends on nothing of attachd's.
package recording

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Field returns m[k] as a string: JSON strings as they are, numbers in
// decimal, anything else as "".
func Field(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// Summary is what an operator wants to see of a voicemail or recording.
type Summary struct {
	CallerIDName   string
	CallerIDNumber string
	From, To       string
	Mailbox        string
	Folder         string
	MediaID        string
	DocID          string
	Length         time.Duration
	Timestamp      time.Time // zero if unknown
	AccountID      string
}

// gregorianOffset converts Kazoo's Gregorian seconds to Unix seconds
// (docs/kazoo.md §4: Unix = value − 62167219200).
const gregorianOffset = 62167219200

// Summarize reads a Summary from an object's metadata, looking in the fetch
// query, then the document's metadata, then the document, then the store query.
func Summarize(meta json.RawMessage) Summary {
	var m map[string]any
	json.Unmarshal(meta, &m)
	sources := Sources(m)
	get := func(keys ...string) string {
		for _, src := range sources {
			for _, k := range keys {
				if v := Field(src, k); v != "" {
					return v
				}
			}
		}
		return ""
	}
	s := Summary{
		CallerIDName:   get("caller_id_name"),
		CallerIDNumber: get("caller_id_number"),
		From:           get("from"),
		To:             get("to"),
		Mailbox:        get("mailbox", "to_user", "source_id"),
		Folder:         get("folder"),
		MediaID:        get("media_id"),
		DocID:          get("id"),
		AccountID:      get("account_id"),
		Timestamp:      Time(m),
	}
	if ms, err := strconv.ParseInt(get("length", "duration_ms"), 10, 64); err == nil {
		s.Length = time.Duration(ms) * time.Millisecond
	}
	return s
}

// Sources returns the objects of a stored object's metadata that describe
// the recording, most specific first: the fetch query, the Kazoo document's
// metadata, the document, the store query.
func Sources(m map[string]any) []map[string]any {
	var out []map[string]any
	if fq, ok := m["fetch_query"].(map[string]any); ok {
		out = append(out, fq)
	}
	if doc, ok := m["document"].(map[string]any); ok {
		if dm, ok := doc["metadata"].(map[string]any); ok {
			out = append(out, dm)
		}
		out = append(out, doc)
	}
	if sq, ok := m["store_query"].(map[string]any); ok {
		out = append(out, sq)
	}
	return out
}

// Time returns when a voicemail or recording was made, from the
// Gregorian-seconds timestamp Kazoo puts in its metadata, or the zero time.
func Time(meta map[string]any) time.Time {
	for _, src := range Sources(meta) {
		for _, k := range []string{"timestamp", "utc_seconds"} {
			if v, err := strconv.ParseInt(Field(src, k), 10, 64); err == nil && v > gregorianOffset {
				return time.Unix(v-gregorianOffset, 0)
			}
		}
		if v, err := strconv.ParseInt(Field(src, "start"), 10, 64); err == nil && v > gregorianOffset {
			return time.Unix(v-gregorianOffset, 0)
		}
	}
	return time.Time{}
}

// Kazoo document types, as DocType names them.
const (
	Voicemail     = "mailbox_message"
	CallRecording = "call_recording"
	Fax           = "fax"
)

// DocType tells what Kazoo document an object is the attachment of, from its
// key's last segment (name), its content type and its metadata m: Voicemail,
// CallRecording, Fax, or "" if nothing says. Kazoo sends no document type
// (it strips pvt_type from the document), so this reads the marks each kind
// leaves (docs/kazoo.md): a recording's call and recording ids, a
// voicemail's mailbox or folder, a fax's TIFF or received_file_ name.
func DocType(name, contentType string, m map[string]any) string {
	ct, _, _ := strings.Cut(contentType, ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	src := func(keys ...string) bool {
		for _, s := range Sources(m) {
			for _, k := range keys {
				if Field(s, k) != "" {
					return true
				}
			}
		}
		return false
	}
	switch {
	case strings.HasPrefix(name, "call_recording_") || src("recording_id", "cdr_id", "call_id"):
		return CallRecording
	case strings.HasPrefix(name, "received_file_") || ct == "image/tiff" || src("fax_id", "from_number", "to_number"):
		return Fax
	case src("mailbox", "folder", "vm_box") || sourceType(m) == "voicemail":
		return Voicemail
	}
	return ""
}

func sourceType(m map[string]any) string {
	if doc, ok := m["document"].(map[string]any); ok {
		return Field(doc, "source_type")
	}
	return ""
}

// AccountFromKey finds the Kazoo account id in a key: the first segment
// that is 32 hex digits, as {arg:account_id} leads Kazoo's default path
// (docs/kazoo.md §2); "" if none is.
func AccountFromKey(key string) string {
	for _, seg := range strings.Split(key, "/") {
		if len(seg) == 32 && strings.Trim(seg, "0123456789abcdefABCDEF") == "" {
			return seg
		}
	}
	return ""
}
