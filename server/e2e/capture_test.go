package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The captures in testdata/kazoo are raw HTTP/1.1 requests exactly as Kazoo's
// httpc sends them. They are generated from the tables below by
//
//	go test ./server/e2e -run TestGenerateCaptures -update
//
// and committed; without -update the same test fails if a committed file no
// longer matches its generator. Tests replay the files and recompute nothing
// but the host header.

var update = flag.Bool("update", false, "rewrite testdata/kazoo from the capture tables")

// captureDir is testdata/kazoo relative to this package.
var captureDir = filepath.Join("..", "..", "testdata", "kazoo")

// placeholderHost is the host every capture's URL names; replay rewrites the
// host header to the server under test and changes nothing else.
const placeholderHost = "kazoo-storage.invalid:37635"

// kazooBase is the scheme and authority of every URL in the captures.
const kazooBase = "http://" + placeholderHost

// The identifiers of docs/kazoo.md §2's worked examples.
const (
	acctA   = "4e3005310add6229778caf6babfe7cfb"
	docD    = "202004-03b64407c4f1f83340a9ef39fc0d02d8"
	nameN   = "uploaded_file_63754892074.mp3"
	ownerO  = "8d5a2c0f6e1b4f3a9c7d2e5b1a0f4c6e"
	modbDB  = "account%2F4e%2F30%2F05310add6229778caf6babfe7cfb-202004"
	callID  = "9e6e95d47601c5507960dac512da2793"
	probeR  = "0f3b6a9c2d5e8f1a4b7c0d3e6f9a2b5c"
	probeID = "6c1d5e9f3a7b2c8d4e0f1a6b5c9d3e7f"
)

// hex32 returns 32 lowercase hex digits derived from label, for doc ids and
// callflow-style attachment names that differ per scenario.
func hex32(label string) string {
	sum := sha256.Sum256([]byte("attachd-e2e-id:" + label))
	return hex.EncodeToString(sum[:16])
}

// newRand returns a deterministic generator for label.
func newRand(label string) *rand.ChaCha8 {
	return rand.NewChaCha8(sha256.Sum256([]byte("attachd-e2e:" + label)))
}

// pseudoRandom returns n deterministic bytes for label.
func pseudoRandom(label string, n int) []byte {
	b := make([]byte, n)
	newRand(label).Read(b)
	return b
}

// mediaFor returns a small deterministic media file for label whose first
// bytes look like the format ext names.
func mediaFor(label, ext string) []byte {
	r := pseudoRandom(label+"/size", 2)
	n := 1024 + int(binary.LittleEndian.Uint16(r))%5000
	b := pseudoRandom(label, n)
	switch ext {
	case ".mp3":
		copy(b, "ID3\x04\x00\x00\x00\x00\x00\x00")
	case ".wav":
		copy(b, "RIFF")
		binary.LittleEndian.PutUint32(b[4:], uint32(n-8))
		copy(b[8:], "WAVEfmt ")
	case ".tiff", ".tif":
		copy(b, "II*\x00")
	}
	return b
}

// boundaryFor is a cowlib 2.x multipart boundary: 48 random bytes in
// unpadded base64url, 64 characters (docs/kazoo.md §1.1).
func boundaryFor(label string) string {
	return base64.RawURLEncoding.EncodeToString(pseudoRandom(label+"/boundary", 48))
}

func strPtr(s string) *string { return &s }

// voicemailDoc is a voicemail box message (kzd_box_message) with the
// metadata object Kazoo ≥ 4.3.106 turns into the fetch query.
func voicemailDoc(id string) kazooDoc {
	return kazooDoc{
		DB:        modbDB,
		AccountID: acctA,
		ID:        id,
		Public: object{
			{"name", "mailbox 1001 message 1"},
			{"description", "voicemail message with media"},
			{"source_type", "voicemail"},
			{"source_id", "a91d6b1a9c4e4e0b8f6f2d3c1b0a9e8d"},
			{"media_source", "upload"},
			{"streamable", true},
			{"utc_seconds", 63754892074},
			{"metadata", object{
				{"media_id", id},
				{"call_id", "3c2e1f0a-5b6d-4e7f-8a9b-0c1d2e3f4a5b"},
				{"caller_id_name", "Zoë O'Hara"},
				{"caller_id_number", "+14158867900"},
				{"from", "1001@a.realm.example"},
				{"from_user", "1001"},
				{"from_realm", "a.realm.example"},
				{"length", 5120},
				{"timestamp", 63754892074},
				{"to", "1010@a.realm.example"},
				{"to_user", "1010"},
				{"to_realm", "a.realm.example"},
				{"folder", "new"},
			}},
		},
	}
}

// recordingDoc is a call_recording doc; owner "" leaves owner_id empty.
// Its custom_channel_vars, tags and empty labels exercise the nested,
// array and "&&" forms of the fetch query (docs/kazoo.md §4.3).
func recordingDoc(id, owner string) kazooDoc {
	return kazooDoc{
		DB:        modbDB,
		AccountID: acctA,
		ID:        id,
		Public: object{
			{"name", "call recording " + callID},
			{"description", "Call recording"},
			{"content_type", "audio/mpeg"},
			{"media_source", "recorded"},
			{"source_type", "kzc_recording"},
			{"from", "1001@a.realm.example"},
			{"to", "+14158867900@a.realm.example"},
			{"caller_id_name", "Front Desk"},
			{"caller_id_number", "1001"},
			{"call_id", callID},
			{"cdr_id", "202004-" + callID},
			{"interaction_id", "63754892074-5c2a9e1f"},
			{"owner_id", owner},
			{"start", 63754892069},
			{"duration_ms", 5120},
			{"custom_channel_vars", object{
				{"Account-ID", acctA},
				{"Owner-ID", owner},
				{"Authorizing-Type", "device"},
			}},
			{"tags", []any{"support", "vip customer"}},
			{"labels", []any{}},
			{"origin", "inbound from +1 415 886 7900"},
		},
	}
}

// faxDoc is an inbound fax doc with an owner (4 URL segments).
func faxDoc(id string) kazooDoc {
	return kazooDoc{
		DB:        modbDB,
		AccountID: acctA,
		ID:        id,
		Public: object{
			{"name", "fax from +14158867900"},
			{"folder", "inbox"},
			{"from_number", "+14158867900"},
			{"to_number", "+14155550100"},
			{"owner_id", ownerO},
			{"pages", 3},
			{"timestamp", 63754892074},
			{"rx_result", object{
				{"success", true},
				{"result_code", 0},
				{"result_text", "OK"},
			}},
		},
	}
}

// probeDoc is the storage_settings_probe doc of docs/kazoo.md §3; account
// is "system_data" for the global /v2/storage probe.
func probeDoc(account string) kazooDoc {
	return kazooDoc{
		DB:        modbDB,
		AccountID: account,
		ID:        probeID,
		Public: object{
			{"att_uuid", "e7f2a1c4b8d34f6a9c0e5b2d7f1a3c6e"},
			{"content", "some random content: " + probeR},
			{"request_id", "a3f1c9e2b7d64e0f8c5a1b3d9e7f2c4a"},
		},
	}
}

// probeName and probeBody are the probe attachment (docs/kazoo.md §3).
const (
	probeName = probeR + "_test_credentials_file.txt"
	probeBody = "some random content: " + probeR
)

// A scenario is one attachment stored by Kazoo and fetched back. It yields
// the captures NAME.store.http, NAME.get-exact.http (the GET of Kazoo ≤
// 4.3.105, the stored URL verbatim) and NAME.get-4.3.106.http (docs/kazoo.md
// §4), and the media file media/NAME.EXT that every GET must return.
type scenario struct {
	Name        string
	About       string // contract reference, for the index
	Settings    storageSettings
	NoPlan      bool // at fetch time no plan maps the doc to http: default fields
	Doc         kazooDoc
	Attachment  string
	ContentType string
	Media       []byte // nil: mediaFor(Name)
	Legacy      bool   // Kazoo < 4.3.106: stray content_type header
}

// ext is the attachment's extension, which the media file keeps.
func (s scenario) ext() string {
	if e := strings.ToLower(path.Ext(s.Attachment)); e != "" {
		return e
	}
	return ".bin"
}

// media is the attachment's bytes as Kazoo holds them.
func (s scenario) media() []byte {
	if s.Media != nil {
		return s.Media
	}
	return mediaFor(s.Name, s.ext())
}

// hasExactGet reports whether an old Kazoo could name the object by the
// stored URL alone: with field_list [] every object is stored at the same
// URL, so only the ≥ 4.3.106 query identifies it.
func (s scenario) hasExactGet() bool {
	return !(s.Settings.HasFieldList && len(s.Settings.FieldList) == 0)
}

// storeRequest is the PUT or POST Kazoo sends.
func (s scenario) storeRequest() wireRequest {
	u := putURL(s.Settings, s.Doc, s.Attachment)
	r := wireRequest{Method: s.Settings.Verb, URL: u, ContentType: s.ContentType, Body: s.media(), StrayContentType: s.Legacy}
	if s.Settings.Multipart {
		data := s.media()
		if s.Settings.Base64 {
			data = []byte(base64.StdEncoding.EncodeToString(data))
		}
		b := boundaryFor(s.Name)
		r.ContentType = "multipart/form-data; boundary=" + b
		r.Body = multipartBody(b, s.Doc, s.Attachment, s.ContentType, data)
	}
	return r
}

// exactGetRequest is the fetch of Kazoo ≤ 4.3.105.
func (s scenario) exactGetRequest() wireRequest {
	return wireRequest{Method: "GET", URL: putURL(s.Settings, s.Doc, s.Attachment)}
}

// newGetRequest is the fetch of Kazoo ≥ 4.3.106.
func (s scenario) newGetRequest() wireRequest {
	hprops := &s.Settings
	if s.NoPlan {
		hprops = nil
	}
	return wireRequest{Method: "GET", URL: fetchURL(putURL(s.Settings, s.Doc, s.Attachment), hprops, s.Doc, s.Attachment)}
}

func (s scenario) storeFile() string    { return s.Name + ".store.http" }
func (s scenario) exactGetFile() string { return s.Name + ".get-exact.http" }
func (s scenario) newGetFile() string   { return s.Name + ".get-4.3.106.http" }
func (s scenario) mediaFile() string    { return "media/" + s.Name + s.ext() }

// plainURL builds storage settings for url with the default fields.
func plainURL(url, verb string) storageSettings {
	return storageSettings{URL: kazooBase + url, Verb: verb}
}

// shapeScenarios are the URL shapes of docs/kazoo.md §2's example table,
// plus the record_call and inbound fax layouts of §5.
func shapeScenarios() []scenario {
	vm := voicemailDoc(docD)
	recAtt := hex32("recording") + ".mp3"
	faxID := "202004-" + hex32("fax")
	recordCall := []urlField{
		{Const: "call_recording_"}, {Field: "call_id"}, {Const: ".mp3"},
		{Const: "?from="}, {Field: "from"},
		{Const: "&to="}, {Field: "to"},
		{Const: "&caller_id_name="}, {Field: "caller_id_name"},
		{Const: "&caller_id_number="}, {Field: "caller_id_number"},
		{Const: "&call_id="}, {Field: "call_id"},
		{Const: "&cdr_id="}, {Field: "cdr_id"},
		{Const: "&interaction_id="}, {Field: "interaction_id"},
		{Const: "&owner_id="}, {Field: "owner_id"},
		{Const: "&account_id="}, {Const: acctA},
		{Const: "&start="}, {Field: "start"},
		{Const: "&duration_ms="}, {Field: "duration_ms"},
		{Const: "&recording_id="}, {Const: "202004-" + hex32("record_call")},
	}
	return []scenario{{
		Name:        "shape-voicemail-default",
		About:       "§2 url http://s:37635/some_prefix/, default fields, voicemail (no owner_id): /some_prefix/A/D/N",
		Settings:    plainURL("/some_prefix/", "PUT"),
		Doc:         vm,
		Attachment:  nameN,
		ContentType: "audio/mp3",
	}, {
		Name:        "shape-recording-owner",
		About:       "§2 call recording with owner: /some_prefix/A/O/D/<32hex>.mp3 (also §6.20)",
		Settings:    plainURL("/some_prefix/", "PUT"),
		Doc:         recordingDoc("202004-"+hex32("recording-doc"), ownerO),
		Attachment:  recAtt,
		ContentType: "audio/mpeg",
	}, {
		Name:        "shape-field-list-empty",
		About:       "§2 field_list [] (HELP-14308): multipart POST /storage/, fetched by media_id (also §6.12)",
		Settings:    storageSettings{URL: kazooBase + "/storage/", HasFieldList: true, FieldList: []urlField{}, Verb: "POST", Multipart: true},
		Doc:         vm,
		Attachment:  nameN,
		ContentType: "audio/mp3",
	}, {
		Name:        "shape-field-list-empty-fax",
		About:       "§2 field_list [] with a doc without metadata: fetched by id",
		Settings:    storageSettings{URL: kazooBase + "/storage/", HasFieldList: true, FieldList: []urlField{}, Verb: "POST", Multipart: true},
		Doc:         faxDoc(faxID),
		Attachment:  "received_file_" + faxID + ".tiff",
		ContentType: "image/tiff",
	}, {
		Name:  "shape-query-path",
		About: "§2 [{const:\"?path=\"},{arg:account_id},{arg:id},{arg:attachment}]: /storage/?path=/A/D/N",
		Settings: storageSettings{URL: kazooBase + "/storage", HasFieldList: true, Verb: "PUT",
			FieldList: []urlField{{Const: "?path="}, {Arg: "account_id"}, {Arg: "id"}, {Arg: "attachment"}}},
		Doc:         vm,
		Attachment:  nameN,
		ContentType: "audio/mp3",
	}, {
		Name:  "shape-group",
		About: "§2 [{group:[{arg:account_id},{const:\"_\"},{arg:attachment}]}]: /storage/A_N",
		Settings: storageSettings{URL: kazooBase + "/storage", HasFieldList: true, Verb: "PUT",
			FieldList: []urlField{{Group: []urlField{{Arg: "account_id"}, {Const: "_"}, {Arg: "attachment"}}}}},
		Doc:         vm,
		Attachment:  nameN,
		ContentType: "audio/mp3",
	}, {
		Name:  "shape-pqc-from",
		About: "§2 Kazoo's own test layout: /pqc_cb_storage/A/D/N?from=pqc_cb_storage (also §6.11)",
		Settings: storageSettings{URL: kazooBase + "/pqc_cb_storage", HasFieldList: true, Verb: "PUT",
			FieldList: []urlField{{Arg: "account_id"}, {Arg: "id"}, {Group: []urlField{{Arg: "attachment"}, {Const: "?from=pqc_cb_storage"}}}}},
		Doc:         vm,
		Attachment:  nameN,
		ContentType: "audio/mp3",
	}, {
		Name:        "shape-index-fu",
		About:       "§2 url http://2600.hz/index.fu?key=abc123&recording= (HELP-14316), default fields",
		Settings:    plainURL("/index.fu?key=abc123&recording=", "PUT"),
		Doc:         vm,
		Attachment:  nameN,
		ContentType: "audio/mp3",
	}, {
		Name:        "shape-field-separator",
		About:       "§2 field_separator \"_\", default fields: /p/A_D_N",
		Settings:    storageSettings{URL: kazooBase + "/p", FieldSeparator: strPtr("_"), Verb: "PUT"},
		Doc:         vm,
		Attachment:  nameN,
		ContentType: "audio/mp3",
	}, {
		Name:        "shape-name-escaped",
		About:       "§2 attachment \"my file+1.mp3\": /p/A/D/my%20file%2B1.mp3",
		Settings:    plainURL("/p", "PUT"),
		Doc:         vm,
		Attachment:  "my file+1.mp3",
		ContentType: "audio/mpeg",
	}, {
		Name:        "shape-name-utf8",
		About:       "§2 attachment \"é.mp3\": raw bytes C3 A9 in the request line",
		Settings:    plainURL("/p", "PUT"),
		Doc:         vm,
		Attachment:  "é.mp3",
		ContentType: "audio/mpeg",
	}, {
		Name:  "shape-db-segment",
		About: "§2 {arg:db}: one segment account%2F4e%2F30%2F05310add…-202004 (also §6.13)",
		Settings: storageSettings{URL: kazooBase + "/p", HasFieldList: true, Verb: "PUT",
			FieldList: []urlField{{Arg: "db"}, {Arg: "id"}, {Arg: "attachment"}}},
		Doc:         vm,
		Attachment:  nameN,
		ContentType: "audio/mp3",
	}, {
		Name:        "shape-system-data-probe",
		About:       "§3 global /v2/storage probe: /p/system_data/<32hex>/<R>_test_credentials_file.txt (also §6.19)",
		Settings:    plainURL("/p", "PUT"),
		Doc:         probeDoc("system_data"),
		Attachment:  probeName,
		ContentType: "text/plain",
		Media:       []byte(probeBody),
	}, {
		Name:  "shape-record-call",
		About: "§5 record_call with its own url: /recordings/call_recording_<call_id>.mp3?from=…&recording_id=…",
		Settings: storageSettings{URL: kazooBase + "/recordings", HasFieldList: true, FieldSeparator: strPtr(""), Verb: "PUT",
			FieldList: recordCall},
		NoPlan:      true,
		Doc:         recordingDoc("202004-"+hex32("record_call"), ""),
		Attachment:  "call_recording_" + callID + ".mp3",
		ContentType: "audio/mpeg",
	}, {
		Name:        "shape-fax-inbound",
		About:       "§5 inbound fax received_file_202004-<32hex>.tiff, image/tiff, with owner (also §6.21)",
		Settings:    plainURL("/p", "PUT"),
		Doc:         faxDoc(faxID),
		Attachment:  "received_file_" + faxID + ".tiff",
		ContentType: "image/tiff",
	}}
}

// vectorScenarios are the §6 test vectors that store and fetch an object
// and are not already one of the shapes.
func vectorScenarios() []scenario {
	vm := func(label string) kazooDoc { return voicemailDoc("202004-" + hex32(label)) }
	p := plainURL("/p", "PUT")
	multipart := p
	multipart.Multipart = true
	b64 := multipart
	b64.Base64 = true
	rawB64 := p
	rawB64.Base64 = true
	overwrite := hex32("v03-att") + ".wav"
	return []scenario{{
		Name:        "v02-post-raw",
		About:       "§6.2 POST of a raw body",
		Settings:    plainURL("/p", "POST"),
		Doc:         vm("v02"),
		Attachment:  hex32("v02-att") + ".mp3",
		ContentType: "audio/mpeg",
	}, {
		Name:        "v03-overwrite-1",
		About:       "§6.3 first of two PUTs to one URL",
		Settings:    p,
		Doc:         vm("v03"),
		Attachment:  overwrite,
		ContentType: "audio/wav",
	}, {
		Name:        "v03-overwrite-2",
		About:       "§6.3 second PUT to the same URL, other bytes",
		Settings:    p,
		Doc:         vm("v03"),
		Attachment:  overwrite,
		ContentType: "audio/wav",
	}, {
		Name:        "v04-multipart",
		About:       "§6.4 Kazoo multipart layout (CRLF first, lowercase part headers, unquoted names, no trailing CRLF)",
		Settings:    multipart,
		Doc:         vm("v04"),
		Attachment:  hex32("v04-att") + ".mp3",
		ContentType: "audio/mpeg",
	}, {
		Name:        "v05-multipart-base64",
		About:       "§6.5 multipart with base64_encode_data: padded single-line base64 media part",
		Settings:    b64,
		Doc:         vm("v05"),
		Attachment:  hex32("v05-att") + ".wav",
		ContentType: "audio/wav",
	}, {
		Name:        "v06-raw-base64-handler",
		About:       "§6.6 raw body from a handler flagged base64: stored as-is (the body is itself valid base64 text)",
		Settings:    rawB64,
		Doc:         vm("v06"),
		Attachment:  hex32("v06-att") + ".txt",
		ContentType: "text/plain",
		Media:       []byte(base64.StdEncoding.EncodeToString(pseudoRandom("v06", 1000))),
	}, {
		Name:        "v07-multipart-name-parens",
		About:       "§6.7 multipart whose media part is named `my file (1).mp3`",
		Settings:    multipart,
		Doc:         vm("v07"),
		Attachment:  "my file (1).mp3",
		ContentType: "audio/mpeg",
	}, {
		Name:        "v08-probe",
		About:       "§6.8 probe POST; its get-4.3.106 is §6.9, its get-exact §6.10",
		Settings:    plainURL("/p", "POST"),
		Doc:         probeDoc(acctA),
		Attachment:  probeName,
		ContentType: "text/plain",
		Media:       []byte(probeBody),
	}, {
		Name:        "v14-utf8-space",
		About:       "§6.14 raw C3 A9 and %20 in one path: stored under \"été message.mp3\"",
		Settings:    p,
		Doc:         vm("v14"),
		Attachment:  "été message.mp3",
		ContentType: "audio/mpeg",
	}, {
		Name:        "v18-auth",
		About:       "§6.18 url with user:pass@ (httpc sends authorization: Basic); Kazoo ≥ 4.3.106 mangles it on fetch",
		Settings:    storageSettings{URL: "http://kazoo:s3cret@" + placeholderHost + "/p", Verb: "PUT"},
		Doc:         vm("v18"),
		Attachment:  hex32("v18-att") + ".mp3",
		ContentType: "audio/mpeg",
	}, {
		Name:        "v18-auth-digits",
		About:       "§6.18 url with an all-digit password, which survives Kazoo's fetch URL rewrite",
		Settings:    storageSettings{URL: "http://recorder:2600@" + placeholderHost + "/p", Verb: "PUT"},
		Doc:         vm("v18-digits"),
		Attachment:  hex32("v18-digits-att") + ".mp3",
		ContentType: "audio/mpeg",
	}, {
		Name:        "legacy-stray-content-type",
		About:       "§0 Kazoo < 4.3.106: also a literal `content_type:` header",
		Settings:    p,
		Doc:         vm("legacy"),
		Attachment:  hex32("legacy-att") + ".mp3",
		ContentType: "audio/mpeg",
		Legacy:      true,
	}}
}

// allScenarios returns shapes then vectors.
func allScenarios() []scenario {
	return append(shapeScenarios(), vectorScenarios()...)
}

// scenarioByName returns the scenario called name.
func scenarioByName(t testing.TB, name string) scenario {
	t.Helper()
	for _, s := range allScenarios() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no scenario %q", name)
	return scenario{}
}

// A literal is a capture that is not a store-and-fetch scenario: a request
// quoted from §6, or a malformed store.
type literal struct {
	Name  string // file name without .http
	About string
	Req   wireRequest
}

// Targets the literals build on.
var (
	v02Target   = "/p/" + acctA + "/202004-" + hex32("v02") + "/" + hex32("v02-att") + ".mp3"
	v17Target   = func(c string) string { return "/p/" + acctA + "/202004-" + hex32("v17") + "/v17-" + c + ".mp3" }
	v18Denied   = "/p/" + acctA + "/202004-" + hex32("v18") + "/denied.mp3"
	unknownDoc  = "202004-ffffffffffffffffffffffffffffffff"
	v24Target   = "/p/" + acctA + "/202004-" + hex32("v24") + "/"
	v17Boundary = boundaryFor("v17")
)

// literals are the quoted and malformed requests.
func literals() []literal {
	get := func(target string) wireRequest { return wireRequest{Method: "GET", URL: kazooBase + target} }
	mp := func(ct string, body []byte, c string) wireRequest {
		return wireRequest{Method: "PUT", URL: kazooBase + v17Target(c), ContentType: ct, Body: body}
	}
	doc := voicemailDoc("202004-" + hex32("v17"))
	good := multipartBody(v17Boundary, doc, "v17.mp3", "audio/mpeg", mediaFor("v17", ".mp3"))
	withB := "multipart/form-data; boundary=" + v17Boundary
	unterminatedHeaders := []byte("\r\n--" + v17Boundary + "\r\ncontent-disposition: form-data; name=" + doc.ID +
		"\r\ncontent-type: application/json" + "\r\n--" + v17Boundary + "--")
	v18 := scenarioByNameNoT("v18-auth").storeRequest()
	noAuth, wrongPW := v18, v18
	noAuth.URL = kazooBase + v18Denied
	wrongPW.URL = "http://kazoo:wrong@" + placeholderHost + v18Denied
	vmPQC := "/pqc_cb_storage/" + acctA + "/" + docD + "/" + nameN
	put24 := func(target, c string) wireRequest {
		return wireRequest{Method: "PUT", URL: kazooBase + target, ContentType: "audio/mpeg", Body: mediaFor("v24-"+c, ".mp3")}
	}
	return []literal{
		{"v11-pqc-literal.get", "§6.11 the GET quoted in the contract, for the object stored by shape-pqc-from",
			get(vmPQC + "?from=pqc_cb_storage" + acctA + "/" + docD + "/" + nameN + "?from=pqc_cb_storage&media_id=" + docD + "&from=x%40y")},
		{"v13-split.get", "§6.13 the db segment split on its %2F: a different key, 404",
			get("/p/account/4e/30/05310add6229778caf6babfe7cfb-202004/" + docD + "/" + nameN)},
		{"v14-escaped.get", "§6.14 the same name fully percent-encoded: same key as v14-utf8-space",
			get("/p/" + acctA + "/202004-" + hex32("v14") + "/%C3%A9t%C3%A9%20message.mp3")},
		{"v15-query.get", "§6.15 lenient query parsing, for the object of v02-post-raw",
			get(v02Target + "?custom_channel_vars[Account-ID]=" + acctA + "&tags[]=a&tags[]=b&&x=1&")},
		{"v16-unknown.get", "§6.16 GET of an object never stored: 404",
			get("/p/" + acctA + "/" + unknownDoc + "/" + hex32("unknown") + ".mp3?media_id=" + unknownDoc + "&id=" + unknownDoc)},
		{"v17-no-boundary.store", "§6.17 multipart/form-data without boundary parameter",
			mp("multipart/form-data", good, "no-boundary")},
		{"v17-mixed-no-boundary.store", "§6.17 Kazoo 4.3.17–4.3.20: multipart/mixed without boundary",
			mp("multipart/mixed", good, "mixed-no-boundary")},
		{"v17-no-delimiter.store", "§6.17 boundary declared, body has no delimiter at all",
			mp(withB, pseudoRandom("v17-garbage", 3000), "no-delimiter")},
		{"v17-no-close-delimiter.store", "§6.17 body ends inside the media part (no --B--)",
			mp(withB, good[:len(good)-len("\r\n--"+v17Boundary+"--")], "no-close-delimiter")},
		{"v17-wrong-boundary.store", "§6.17 header boundary differs from the body's",
			mp("multipart/form-data; boundary="+boundaryFor("v17-other"), good, "wrong-boundary")},
		{"v17-unterminated-part-headers.store", "§6.17 part header block never ends",
			mp(withB, unterminatedHeaders, "unterminated-part-headers")},
		{"v17-empty.store", "§6.17 multipart content type, empty body",
			mp(withB, []byte{}, "empty")},
		{"v18-no-auth.store", "§6.18 the v18 store without credentials: 401",
			wireRequest{Method: "PUT", URL: noAuth.URL, ContentType: noAuth.ContentType, Body: noAuth.Body}},
		{"v18-wrong-password.store", "§6.18 the v18 store with a wrong password: 401",
			wrongPW},
		{"v24-double-slash.store", "§6.24 empty segment in the path: stored (201), never redirected",
			put24(strings.Replace(v24Target, "/p/", "/p//", 1)+"double.mp3", "double")},
		{"v24-trailing-slash.store", "§6.24 trailing slash: stored (201), never redirected",
			put24(v24Target+"trailing.mp3/", "trailing")},
		{"v24-double-slash.get", "§6.24 canonical GET for v24-double-slash",
			get(v24Target + "double.mp3")},
		{"v24-trailing-slash.get", "§6.24 canonical GET for v24-trailing-slash",
			get(v24Target + "trailing.mp3")},
	}
}

// scenarioByNameNoT is scenarioByName for table construction.
func scenarioByNameNoT(name string) scenario {
	for _, s := range allScenarios() {
		if s.Name == name {
			return s
		}
	}
	panic("no scenario " + name)
}

// generateCaptures returns every file of testdata/kazoo by relative path.
func generateCaptures() map[string][]byte {
	files := map[string][]byte{}
	var index strings.Builder
	index.WriteString(captureIndexHeader)
	for _, s := range allScenarios() {
		files[s.storeFile()] = s.storeRequest().bytes()
		fmt.Fprintf(&index, "- `%s` %s\n  - store: `%s`\n", s.Name, s.About, s.storeFile())
		if s.hasExactGet() {
			files[s.exactGetFile()] = s.exactGetRequest().bytes()
			fmt.Fprintf(&index, "  - fetch, Kazoo ≤ 4.3.105: `%s`\n", s.exactGetFile())
		}
		files[s.newGetFile()] = s.newGetRequest().bytes()
		files[s.mediaFile()] = s.media()
		fmt.Fprintf(&index, "  - fetch, Kazoo ≥ 4.3.106: `%s`\n  - expected body: `%s` (%s)\n",
			s.newGetFile(), s.mediaFile(), s.ContentType)
	}
	index.WriteString("\n## Other requests\n\n")
	for _, l := range literals() {
		files[l.Name+".http"] = l.Req.bytes()
		fmt.Fprintf(&index, "- `%s.http` %s\n", l.Name, l.About)
	}
	files["README.md"] = []byte(index.String())
	files[".gitattributes"] = []byte("# Captures are byte-exact HTTP requests (CRLF, raw UTF-8); never convert them.\n* -text -diff\nREADME.md text diff\n.gitattributes text diff\n")
	return files
}

const captureIndexHeader = `# Kazoo request captures

Raw HTTP/1.1 requests exactly as Kazoo's OTP httpc writes them (see
docs/kazoo.md and server/e2e): lowercase header names in
httpc's order (content-type, content-length, te, host, authorization,
connection), CRLF line endings, byte-exact bodies. Every URL names the host
` + "`" + placeholderHost + "`" + `; the replay in server/e2e rewrites that one header and
nothing else.

Generated, do not edit: ` + "`go test ./server/e2e -run TestGenerateCaptures -update`" + `.
Vector 1 (1 MiB), 22 (200 MB) and the crash test bodies are generated at test time.

## Store and fetch scenarios

`

// TestGenerateCaptures writes testdata/kazoo with -update, and otherwise
// fails if the committed files differ from what the tables generate.
func TestGenerateCaptures(t *testing.T) {
	files := generateCaptures()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	if *update {
		if err := os.RemoveAll(captureDir); err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			p := filepath.Join(captureDir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, files[name], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("wrote %d files to %s", len(files), captureDir)
		return
	}
	var onDisk []string
	err := filepath.WalkDir(captureDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(captureDir, p)
		onDisk = append(onDisk, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatalf("reading captures (run with -update to create them): %v", err)
	}
	for _, name := range names {
		got, err := os.ReadFile(filepath.Join(captureDir, filepath.FromSlash(name)))
		if err != nil {
			t.Errorf("%s: %v (run with -update)", name, err)
			continue
		}
		if !bytes.Equal(got, files[name]) {
			t.Errorf("%s differs from its generator (run with -update)", name)
		}
	}
	for _, name := range onDisk {
		if _, ok := files[name]; !ok {
			t.Errorf("%s is not generated by any table (stale; run with -update)", name)
		}
	}
}

// TestKazooURLRules checks the generator against the worked examples of
// docs/kazoo.md §2 and §4, so that the captures are what Kazoo sends.
func TestKazooURLRules(t *testing.T) {
	A, D, N := acctA, docD, nameN
	tests := []struct {
		scenario string
		put, get string // request-targets
	}{
		{"shape-voicemail-default", "/some_prefix/" + A + "/" + D + "/" + N,
			"/some_prefix/" + A + "/" + D + "/" + N + "/" + A + "/" + D + "/" + N + "?media_id=" + D + "&call_id="},
		{"shape-recording-owner", "/some_prefix/" + A + "/" + ownerO + "/", "custom_channel_vars[Account-ID]=" + A + "&"},
		{"shape-field-list-empty", "/storage/", "/storage/?media_id=" + D + "&"},
		{"shape-query-path", "/storage/?path=/" + A + "/" + D + "/" + N, "/storage/?path=/" + A + "/" + D + "/" + N + "?path=/" + A + "/" + D + "/" + N + "&media_id="},
		{"shape-group", "/storage/" + A + "_" + N, "/storage/" + A + "_" + N + "/" + A + "_" + N + "?media_id="},
		{"shape-pqc-from", "/pqc_cb_storage/" + A + "/" + D + "/" + N + "?from=pqc_cb_storage",
			"/pqc_cb_storage/" + A + "/" + D + "/" + N + "?from=pqc_cb_storage" + A + "/" + D + "/" + N + "?from=pqc_cb_storage&media_id=" + D},
		{"shape-index-fu", "/index.fu?key=abc123&recording=" + A + "/" + D + "/" + N,
			"/index.fu?key=abc123&recording=" + A + "/" + D + "/" + N + A + "/" + D + "/" + N + "&media_id="},
		{"shape-field-separator", "/p/" + A + "_" + D + "_" + N, "/p/" + A + "_" + D + "_" + N + "/" + A + "_" + D + "_" + N + "?"},
		{"shape-name-escaped", "/p/" + A + "/" + D + "/my%20file%2B1.mp3", "/my%20file%2B1.mp3?"},
		{"shape-name-utf8", "/p/" + A + "/" + D + "/\xc3\xa9.mp3", "\xc3\xa9.mp3?media_id="},
		{"shape-db-segment", "/p/" + modbDB + "/" + D + "/" + N, "/p/" + modbDB + "/" + D + "/" + N + "/" + modbDB + "/"},
		{"shape-system-data-probe", "/p/system_data/" + probeID + "/" + probeName,
			"?att_uuid=e7f2a1c4b8d34f6a9c0e5b2d7f1a3c6e&content=some+random+content%3A+" + probeR + "&request_id="},
		{"shape-record-call", "/recordings/call_recording_" + callID + ".mp3?from=1001%40a.realm.example&to=%2B14158867900%40a.realm.example&caller_id_name=Front%20Desk&",
			"&owner_id=&account_id=" + A + "&"},
		{"v18-auth", "/p/", "/p/"},
	}
	for _, tt := range tests {
		s := scenarioByName(t, tt.scenario)
		put, _, _ := splitHTTPC(s.storeRequest().URL)
		get, _, _ := splitHTTPC(s.newGetRequest().URL)
		if !strings.HasPrefix(put, tt.put) {
			t.Errorf("%s: PUT target %q, want prefix %q", tt.scenario, put, tt.put)
		}
		if !strings.Contains(get, tt.get) {
			t.Errorf("%s: GET target %q, want it to contain %q", tt.scenario, get, tt.get)
		}
	}
	// The recording's query carries the nested, array and empty-array forms.
	rec := string(scenarioByName(t, "shape-recording-owner").newGetRequest().bytes())
	for _, want := range []string{"&tags[]=support&tags[]=vip+customer&&origin=", "custom_channel_vars[Owner-ID]=" + ownerO} {
		if !strings.Contains(rec, want) {
			t.Errorf("recording fetch lacks %q", want)
		}
	}
	// Kazoo's urlsplit/urlunsplit drops the ':' of user:pass@ on fetch.
	if got := string(scenarioByName(t, "v18-auth").newGetRequest().bytes()); !strings.Contains(got,
		"authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("kazoos3cret:"))+"\r\n") {
		t.Errorf("v18-auth fetch does not carry Kazoo's mangled credentials:\n%s", got)
	}
	if got := string(scenarioByName(t, "v18-auth-digits").newGetRequest().bytes()); !strings.Contains(got,
		"authorization: Basic "+base64.StdEncoding.EncodeToString([]byte("recorder:2600"))+"\r\n") {
		t.Errorf("v18-auth-digits fetch lost its credentials:\n%s", got)
	}
	// Multipart layout (§1.1).
	body := scenarioByName(t, "v04-multipart").storeRequest().Body
	if !bytes.HasPrefix(body, []byte("\r\n--")) || !bytes.HasSuffix(body, []byte("--")) || bytes.HasSuffix(body, []byte("\r\n")) {
		t.Errorf("multipart body does not start with CRLF-- or ends with CRLF")
	}
	if b := boundaryFor("x"); len(b) != 64 || strings.Trim(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		t.Errorf("boundary %q is not 64 base64url characters", b)
	}
	if !slices.Contains(strings.Split(string(scenarioByName(t, "v02-post-raw").storeRequest().head(1)), "\r\n"), "te: ") {
		t.Errorf("store head lacks httpc's empty te header")
	}
}
