package kazoo

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// kazooBoundary is a boundary as Kazoo makes it: 48 random bytes in unpadded base64url,
// 64 characters of [A-Za-z0-9_-] (contract §1.1). This one has both '-' and '_'.
var kazooBoundary = func() string {
	sum := sha256.Sum256([]byte("attachd"))
	raw := append(sum[:], 0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff)
	raw = append(raw, sum[:10]...)
	return base64.RawURLEncoding.EncodeToString(raw)
}()

// kazooPart is what Kazoo puts in one part: a name, a content type and the data.
type kazooPart struct {
	name, ct string
	data     []byte
}

// kazooBody lays parts out byte for byte as Kazoo's build_multipart_body does
// (contract §1.1): a leading CRLF, lower-case headers, an unquoted name, and nothing
// after the close delimiter.
func kazooBody(boundary string, parts ...kazooPart) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		b.WriteString("\r\n--" + boundary + "\r\n")
		b.WriteString("content-disposition: form-data; name=" + p.name + "\r\n")
		b.WriteString("content-type: " + p.ct + "\r\n\r\n")
		b.Write(p.data)
	}
	b.WriteString("\r\n--" + boundary + "--")
	return b.Bytes()
}

// gotPart is a parsed part with its body read.
type gotPart struct {
	Header            map[string]string
	Name, ContentType string
	Body              string
}

// readParts parses a whole body. With writeTo the bodies are read through WriteTo,
// else through Read.
func readParts(r io.Reader, boundary string, writeTo bool) ([]gotPart, error) {
	mr := NewMultipartReader(r, boundary)
	var parts []gotPart
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return parts, nil
		}
		if err != nil {
			return parts, err
		}
		var body bytes.Buffer
		if writeTo {
			_, err = p.WriteTo(&body)
		} else {
			_, err = io.Copy(&body, struct{ io.Reader }{p})
		}
		if err != nil {
			return parts, err
		}
		parts = append(parts, gotPart{p.Header, p.Name, p.ContentType, body.String()})
	}
}

// samePart compares a parsed part to a wanted one; a nil wanted Header is not compared.
func samePart(got, want gotPart) bool {
	if want.Header == nil {
		got.Header = nil
	}
	return reflect.DeepEqual(got, want)
}

func TestBoundaryFromContentType(t *testing.T) {
	tests := []struct {
		ct, want string
		ok       bool
	}{
		{"multipart/form-data; boundary=" + kazooBoundary, kazooBoundary, true},
		{"multipart/form-data;boundary=abc", "abc", true},
		{`multipart/form-data; boundary="a b:c"`, "a b:c", true},
		{`Multipart/Form-Data; charset=utf-8; BOUNDARY="q\"x"`, `q"x`, true},
		{"MULTIPART/MIXED; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW", "----WebKitFormBoundary7MA4YWxkTrZu0gW", true},
		{"multipart/form-data; boundary=abc; charset=utf-8", "abc", true},
		{"multipart/form-data; boundary= abc ", "abc", true},
		{" multipart/form-data ; boundary=abc", "abc", true},
		{"multipart/form-data; boundary=a=b", "a=b", true},
		{"multipart/form-data; boundary=x; boundary=y", "x", true},
		// Kazoo 4.3.17–4.3.20 sent no boundary (contract §0).
		{"multipart/mixed", "", false},
		{"multipart/form-data; boundary=", "", false},
		{`multipart/form-data; boundary=""`, "", false},
		{"multipart/related; boundary=abc", "", false},
		{"audio/mpeg", "", false},
		{"", "", false},
		{"multipart/form-data; boundary=" + strings.Repeat("x", 257), "", false},
		{"multipart/form-data; boundary=\"a\rb\"", "", false},
	}
	for _, tt := range tests {
		got, ok := BoundaryFromContentType(tt.ct)
		if got != tt.want || ok != tt.ok {
			t.Errorf("BoundaryFromContentType(%q) = %q, %v; want %q, %v", tt.ct, got, ok, tt.want, tt.ok)
		}
	}
}

// TestKazooLayout checks contract §6 vector 4: Kazoo's exact bytes.
func TestKazooLayout(t *testing.T) {
	if len(kazooBoundary) != 64 || strings.Trim(kazooBoundary, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" ||
		!strings.Contains(kazooBoundary, "-") || !strings.Contains(kazooBoundary, "_") {
		t.Fatalf("kazooBoundary %q is not 64 base64url characters", kazooBoundary)
	}
	const doc = `{"name":"mailbox 1010 message 04-03-2020 12:34:56","description":"message media","source_type":"voicemail","source_id":"f2e2c7b6a4b14f0c9e8f7d6c5b4a3921","media_source":"recording","streamable":true,"utc_seconds":63754892074,"metadata":{"timestamp":63754892074,"from":"1001@realm","to":"1010@realm","caller_id_number":"1001","caller_id_name":"Alice","call_id":"OTk5","folder":"new","length":1000,"media_id":"202004-03b64407c4f1f83340a9ef39fc0d02d8"},"id":"202004-03b64407c4f1f83340a9ef39fc0d02d8"}`
	media := []byte("ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64\r\n--\r\n\r\n-- \x00")
	body := "\r\n--" + kazooBoundary + "\r\n" +
		"content-disposition: form-data; name=202004-03b64407c4f1f83340a9ef39fc0d02d8\r\n" +
		"content-type: application/json\r\n" +
		"\r\n" +
		doc +
		"\r\n--" + kazooBoundary + "\r\n" +
		"content-disposition: form-data; name=uploaded_file_63754892074.mp3\r\n" +
		"content-type: audio/mpeg\r\n" +
		"\r\n" +
		string(media) +
		"\r\n--" + kazooBoundary + "--"
	if got := kazooBody(kazooBoundary,
		kazooPart{"202004-03b64407c4f1f83340a9ef39fc0d02d8", "application/json", []byte(doc)},
		kazooPart{"uploaded_file_63754892074.mp3", "audio/mpeg", media}); string(got) != body {
		t.Fatalf("kazooBody differs from the contract layout:\n%q\n%q", got, body)
	}
	b, ok := BoundaryFromContentType("multipart/form-data; boundary=" + kazooBoundary)
	if !ok {
		t.Fatal("no boundary")
	}
	parts, err := readParts(strings.NewReader(body), b, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []gotPart{
		{map[string]string{"content-disposition": "form-data; name=202004-03b64407c4f1f83340a9ef39fc0d02d8", "content-type": "application/json"},
			"202004-03b64407c4f1f83340a9ef39fc0d02d8", "application/json", doc},
		{map[string]string{"content-disposition": "form-data; name=uploaded_file_63754892074.mp3", "content-type": "audio/mpeg"},
			"uploaded_file_63754892074.mp3", "audio/mpeg", string(media)},
	}
	if !reflect.DeepEqual(parts, want) {
		t.Fatalf("parts = %q\nwant %q", parts, want)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(parts[0].Body), &v); err != nil || v["id"] != "202004-03b64407c4f1f83340a9ef39fc0d02d8" {
		t.Errorf("JSON part: %v, id %v", err, v["id"])
	}
}

// multipartCase is a body and what parsing it must give: parts, or an error that wraps
// ErrMalformed and contains errText.
type multipartCase struct {
	name     string
	boundary string
	body     string
	want     []gotPart
	errText  string
}

func multipartCases() []multipartCase {
	const B = "XyZ-_09"
	k := func(parts ...kazooPart) string { return string(kazooBody(B, parts...)) }
	part := func(name, ct, body string) gotPart { return gotPart{nil, name, ct, body} }
	tooManyParts := make([]kazooPart, maxParts+1)
	maxPartsBody := make([]kazooPart, maxParts)
	for i := range tooManyParts {
		tooManyParts[i] = kazooPart{fmt.Sprint(i), "text/plain", []byte("x")}
	}
	copy(maxPartsBody, tooManyParts)
	bigHeader := "x-big: " + strings.Repeat("a", maxHeaderBytes-len("x-big: \r\n\r\n")) + "\r\n\r\n"
	return []multipartCase{
		{name: "kazoo", boundary: B,
			body: k(kazooPart{"D", "application/json", []byte(`{"id":"D"}`)}, kazooPart{"N.mp3", "audio/mpeg", []byte("media")}),
			want: []gotPart{part("D", "application/json", `{"id":"D"}`), part("N.mp3", "audio/mpeg", "media")}},
		// Contract §6 vector 7.
		{name: "name with spaces and parentheses", boundary: B,
			body: k(kazooPart{"my file (1).mp3", "audio/mpeg", []byte("m")}),
			want: []gotPart{part("my file (1).mp3", "audio/mpeg", "m")}},
		{name: "name with comma slash equals", boundary: B,
			body: k(kazooPart{"a,b/c=d e.wav", "audio/wav", []byte("w")}),
			want: []gotPart{part("a,b/c=d e.wav", "audio/wav", "w")}},
		{name: "unquoted name with semicolon", boundary: B,
			body: k(kazooPart{"a;b.mp3", "audio/mpeg", nil}),
			want: []gotPart{part("a;b.mp3", "audio/mpeg", "")}},
		{name: "unquoted name with quote", boundary: B,
			body: k(kazooPart{`it's "x".mp3`, "audio/mpeg", nil}),
			want: []gotPart{part(`it's "x".mp3`, "audio/mpeg", "")}},
		{name: "browser style", boundary: "----WebKitFormBoundary7MA4YWxkTrZu0gW",
			body: "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n" +
				"Content-Disposition: form-data; name=\"meta\"\r\n\r\n{}\r\n" +
				"------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n" +
				"Content-Disposition: form-data; name=\"file\"; filename=\"a b.mp3\"\r\n" +
				"Content-Type: audio/mpeg\r\n\r\nDATA\r\n" +
				"------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n",
			want: []gotPart{
				{map[string]string{"content-disposition": `form-data; name="meta"`}, "meta", "", "{}"},
				{map[string]string{"content-disposition": `form-data; name="file"; filename="a b.mp3"`, "content-type": "audio/mpeg"}, "file", "audio/mpeg", "DATA"},
			}},
		{name: "preamble and epilogue", boundary: B,
			body: "This is a preamble.\r\n--XyZ-_09 \t\r\nCONTENT-TYPE:text/plain\r\n\r\nhello\r\n--XyZ-_09--  \r\nepilogue\r\n--XyZ-_09\r\n",
			want: []gotPart{part("", "text/plain", "hello")}},
		{name: "preamble resembling the boundary", boundary: B,
			body: "--XyZ-_09x\r\n\r\n--XyZ-_09\r\n\r\nbody\r\n--XyZ-_09--",
			want: []gotPart{part("", "", "body")}},
		{name: "header forms", boundary: B,
			body: "--XyZ-_09\r\nContent-Disposition: form-data;\r\n\tNAME=\"q\\\"uoted\\\\\" ; filename=x\n" +
				"X-Dup: first\r\nx-dup: second\r\nX-Empty:\r\nX-Spaced : v \r\n\r\n\r\n--XyZ-_09--",
			want: []gotPart{{map[string]string{
				"content-disposition": `form-data; NAME="q\"uoted\\" ; filename=x`,
				"x-dup":               "first", "x-empty": "", "x-spaced": "v",
			}, `q"uoted\`, "", ""}}},
		{name: "no headers", boundary: B,
			body: "--XyZ-_09\r\n\r\nx\r\n--XyZ-_09--",
			want: []gotPart{{map[string]string{}, "", "", "x"}}},
		{name: "near-boundary bodies", boundary: B,
			body: k(kazooPart{"a", "text/plain", []byte("\r\n--XyZ-_0\r\n--XyZ-_09x\r\n--XyZ-_09-\r\n--XyZ-_09 x\r\n--XyZ-_09\r\r\n--XyZ-_09\n--XyZ-_09\r")},
				kazooPart{"b", "text/plain", []byte("--XyZ-_09\r\n")}, // not after CRLF: data
				kazooPart{"c", "text/plain", []byte("\r")},
				kazooPart{"d", "text/plain", []byte("\r\n")},
				kazooPart{"e", "text/plain", []byte("\r\n-")},
				kazooPart{"f", "text/plain", []byte("--")}),
			want: []gotPart{
				part("a", "text/plain", "\r\n--XyZ-_0\r\n--XyZ-_09x\r\n--XyZ-_09-\r\n--XyZ-_09 x\r\n--XyZ-_09\r\r\n--XyZ-_09\n--XyZ-_09\r"),
				part("b", "text/plain", "--XyZ-_09\r\n"),
				part("c", "text/plain", "\r"),
				part("d", "text/plain", "\r\n"),
				part("e", "text/plain", "\r\n-"),
				part("f", "text/plain", "--"),
			}},
		{name: "padding longer than allowed is data", boundary: B,
			body: "--XyZ-_09\r\n\r\na\r\n--XyZ-_09" + strings.Repeat(" ", maxPadding+1) + "\r\nb\r\n--XyZ-_09--",
			want: []gotPart{{map[string]string{}, "", "", "a\r\n--XyZ-_09" + strings.Repeat(" ", maxPadding+1) + "\r\nb"}}},
		{name: "boundary of dashes", boundary: "--",
			body: "\r\n----\r\n\r\n-\r\n---x\r\n------",
			want: []gotPart{{map[string]string{}, "", "", "-\r\n---x"}}},
		{name: "close delimiter only", boundary: B, body: "\r\n--XyZ-_09--", want: nil},
		{name: "64 parts", boundary: B, body: k(maxPartsBody...), want: func() (w []gotPart) {
			for _, p := range maxPartsBody {
				w = append(w, part(p.name, p.ct, string(p.data)))
			}
			return w
		}()},
		{name: "headers of exactly 16 KiB", boundary: B, body: "--XyZ-_09\r\n" + bigHeader + "z\r\n--XyZ-_09--",
			want: []gotPart{{map[string]string{"x-big": strings.Repeat("a", maxHeaderBytes-len("x-big: \r\n\r\n"))}, "", "", "z"}}},

		{name: "empty", boundary: B, body: "", errText: "missing close delimiter"},
		{name: "no delimiter", boundary: B, body: "just some text", errText: "missing close delimiter"},
		{name: "no close delimiter", boundary: B, body: "--XyZ-_09\r\n\r\nbody", errText: "missing close delimiter"},
		{name: "half a close delimiter", boundary: B, body: "--XyZ-_09\r\n\r\nbody\r\n--XyZ-_09-", errText: "missing close delimiter"},
		{name: "truncated headers", boundary: B, body: "--XyZ-_09\r\ncontent-type: text/plain\r\n", errText: "truncated part headers"},
		{name: "bad header line", boundary: B, body: "--XyZ-_09\r\nno colon here\r\n\r\n\r\n--XyZ-_09--", errText: "bad header line"},
		{name: "empty header name", boundary: B, body: "--XyZ-_09\r\n: v\r\n\r\n\r\n--XyZ-_09--", errText: "bad header line"},
		{name: "space in header name", boundary: B, body: "--XyZ-_09\r\na b: v\r\n\r\n\r\n--XyZ-_09--", errText: "bad header line"},
		{name: "bare CR in header", boundary: B, body: "--XyZ-_09\r\na: v\rw\r\n\r\n\r\n--XyZ-_09--", errText: "bad header line"},
		{name: "leading continuation", boundary: B, body: "--XyZ-_09\r\n a: v\r\n\r\n\r\n--XyZ-_09--", errText: "bad header line"},
		{name: "missing blank line", boundary: B, body: "--XyZ-_09\r\na: v\r\n--XyZ-_09--", errText: "missing blank line"},
		{name: "missing blank line before next part", boundary: B, body: "--XyZ-_09\r\na: v\r\n--XyZ-_09\t\r\n\r\n\r\n--XyZ-_09--", errText: "missing blank line"},
		{name: "headers over 16 KiB", boundary: B, body: "--XyZ-_09\r\nx-big: " + strings.Repeat("a", maxHeaderBytes) + "\r\n\r\n\r\n--XyZ-_09--", errText: "part headers over"},
		{name: "header lines over 16 KiB", boundary: B, body: "--XyZ-_09\r\n" + strings.Repeat("a: b\r\n", maxHeaderBytes/6+1) + "\r\n\r\n--XyZ-_09--", errText: "part headers over"},
		{name: "headers 1 byte over 16 KiB", boundary: B, body: "--XyZ-_09\r\nx" + bigHeader + "z\r\n--XyZ-_09--", errText: "part headers over"},
		{name: "65 parts", boundary: B, body: k(tooManyParts...), errText: "more than 64 parts"},
		{name: "empty boundary", boundary: "", body: "--\r\n\r\n\r\n----", errText: "invalid boundary"},
		{name: "boundary with LF", boundary: "a\nb", body: "--a\nb\r\n\r\n\r\n--a\nb--", errText: "invalid boundary"},
	}
}

func TestMultipart(t *testing.T) {
	for _, tt := range multipartCases() {
		t.Run(tt.name, func(t *testing.T) {
			readers := map[string]func(io.Reader) io.Reader{
				"whole":   func(r io.Reader) io.Reader { return r },
				"onebyte": iotest.OneByteReader,
				"half":    iotest.HalfReader,
				"dataerr": iotest.DataErrReader,
				"dataerr-onebyte": func(r io.Reader) io.Reader {
					return iotest.DataErrReader(iotest.OneByteReader(r))
				},
			}
			for rname, wrap := range readers {
				for _, writeTo := range []bool{false, true} {
					got, err := readParts(wrap(strings.NewReader(tt.body)), tt.boundary, writeTo)
					where := fmt.Sprintf("%s reader, writeTo=%v", rname, writeTo)
					if tt.errText != "" {
						if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.errText) {
							t.Fatalf("%s: err = %v, want ErrMalformed with %q", where, err, tt.errText)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%s: %v", where, err)
					}
					if len(got) != len(tt.want) {
						t.Fatalf("%s: got %d parts %q, want %d %q", where, len(got), got, len(tt.want), tt.want)
					}
					for i := range got {
						if !samePart(got[i], tt.want[i]) {
							t.Errorf("%s: part %d = %q, want %q", where, i, got[i], tt.want[i])
						}
					}
				}
			}
		})
	}
}

// TestMultipartTruncated cuts a Kazoo body at every offset: no cut may parse.
func TestMultipartTruncated(t *testing.T) {
	body := kazooBody(kazooBoundary,
		kazooPart{"202004-03b64407c4f1f83340a9ef39fc0d02d8", "application/json", []byte(`{"id":"x"}`)},
		kazooPart{"my file (1).mp3", "audio/mpeg", []byte("\x00\r\n--\r\nmedia\r")})
	if _, err := readParts(bytes.NewReader(body), kazooBoundary, false); err != nil {
		t.Fatalf("whole body: %v", err)
	}
	for n := range len(body) {
		for _, writeTo := range []bool{false, true} {
			_, err := readParts(iotest.DataErrReader(bytes.NewReader(body[:n])), kazooBoundary, writeTo)
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("body cut at %d of %d (writeTo=%v): err = %v, want ErrMalformed", n, len(body), writeTo, err)
			}
		}
	}
}

// TestMultipartReaderError checks that a failing reader's error comes back as it is,
// wherever it strikes, and is not taken for a malformed body.
func TestMultipartReaderError(t *testing.T) {
	body := kazooBody(kazooBoundary,
		kazooPart{"D", "application/json", []byte(`{"id":"D"}`)},
		kazooPart{"N.mp3", "audio/mpeg", bytes.Repeat([]byte("media\r\n"), 100)})
	errDrop := errors.New("connection reset")
	for n := range len(body) {
		for _, failure := range []error{errDrop, io.ErrUnexpectedEOF} {
			r := io.MultiReader(bytes.NewReader(body[:n]), iotest.ErrReader(failure))
			_, err := readParts(r, kazooBoundary, n%2 == 0)
			if !errors.Is(err, failure) || errors.Is(err, ErrMalformed) {
				t.Fatalf("reader failing after %d bytes with %v: err = %v", n, failure, err)
			}
		}
	}
	// A net/http body read timing out, say.
	_, err := readParts(iotest.TimeoutReader(iotest.OneByteReader(bytes.NewReader(body))), kazooBoundary, false)
	if !errors.Is(err, iotest.ErrTimeout) || errors.Is(err, ErrMalformed) {
		t.Fatalf("timeout: err = %v", err)
	}
}

// TestMultipartSkipAndStale checks that NextPart skips unread bodies and that a part
// can no longer be read once NextPart has moved on.
func TestMultipartSkipAndStale(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789\r\n-"), 20000)
	body := kazooBody(kazooBoundary,
		kazooPart{"a", "text/plain", big},
		kazooPart{"b", "text/plain", []byte("second")})
	mr := NewMultipartReader(bytes.NewReader(body), kazooBoundary)
	p1, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(p1, buf); err != nil || string(buf) != "0123456789" {
		t.Fatalf("first read: %q, %v", buf, err)
	}
	p2, err := mr.NextPart()
	if err != nil || p2.Name != "b" {
		t.Fatalf("second part: %v, %v", p2, err)
	}
	if _, err := p1.Read(buf); !errors.Is(err, errPartClosed) {
		t.Errorf("stale part read: %v", err)
	}
	if b, err := io.ReadAll(p2); err != nil || string(b) != "second" {
		t.Errorf("second body %q, %v", b, err)
	}
	if n, err := p2.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("read after EOF: %d, %v", n, err)
	}
	for range 2 {
		if _, err := mr.NextPart(); err != io.EOF {
			t.Errorf("after last part: %v", err)
		}
	}
	if _, err := p2.Read(buf); err != io.EOF {
		t.Errorf("finished part after EOF: %v", err)
	}
}

// TestMultipartBase64Media checks contract §6 vector 5: base64 media, padded, on one
// line, decoded on the fly.
func TestMultipartBase64Media(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 1000, 100001} {
		media := make([]byte, n)
		rand.Read(media)
		enc := base64.StdEncoding.EncodeToString(media)
		body := kazooBody(kazooBoundary,
			kazooPart{"D", "application/json", []byte(`{"id":"D"}`)},
			kazooPart{"N.mp3", "audio/mpeg", []byte(enc)})
		mr := NewMultipartReader(iotest.HalfReader(bytes.NewReader(body)), kazooBoundary)
		if _, err := mr.NextPart(); err != nil {
			t.Fatal(err)
		}
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		w := NewBase64Writer(&out)
		if _, err := io.Copy(w, p); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), media) {
			t.Fatalf("%d bytes: decoded media differs", n)
		}
		if _, err := mr.NextPart(); err != io.EOF {
			t.Fatalf("after media: %v", err)
		}
	}
}

// TestMultipartEmptyFieldList checks the multipart half of contract §6 vector 12: with
// field_list [] the URL names nothing, and the parts, named by doc id and attachment
// name, must say what is stored.
func TestMultipartEmptyFieldList(t *testing.T) {
	const d, n = "202004-03b64407c4f1f83340a9ef39fc0d02d8", "uploaded_file_63754892074.mp3"
	body := kazooBody(kazooBoundary,
		kazooPart{d, "application/json", []byte(`{"media_id":"` + d + `","id":"` + d + `"}`)},
		kazooPart{n, "audio/mpeg", []byte("mp3 bytes")})
	parts, err := readParts(bytes.NewReader(body), kazooBoundary, true)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ ID string }
	if len(parts) != 2 || json.Unmarshal([]byte(parts[0].Body), &doc) != nil || doc.ID != d ||
		parts[0].Name != d || parts[1].Name != n || parts[1].Body != "mp3 bytes" {
		t.Fatalf("parts = %q", parts)
	}
}

// TestMultipartRandomKazooBoundary runs a fresh random Kazoo-style boundary.
func TestMultipartRandomKazooBoundary(t *testing.T) {
	raw := make([]byte, 48)
	rand.Read(raw)
	b := base64.RawURLEncoding.EncodeToString(raw)
	ct := "multipart/form-data; boundary=" + b
	got, ok := BoundaryFromContentType(ct)
	if !ok || got != b {
		t.Fatalf("BoundaryFromContentType(%q) = %q, %v", ct, got, ok)
	}
	media := make([]byte, 70000)
	rand.Read(media)
	parts, err := readParts(iotest.OneByteReader(bytes.NewReader(kazooBody(b, kazooPart{"x", "audio/wav", media}))), b, false)
	if err != nil || len(parts) != 1 || parts[0].Body != string(media) {
		t.Fatalf("parts: %d, %v", len(parts), err)
	}
}

// chunkReader repeats block for n bytes, so large bodies need no large buffers.
type chunkReader struct {
	block []byte
	off   int
	n     int64
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n)]
	c := copy(p, r.block[r.off:])
	r.off = (r.off + c) % len(r.block)
	r.n -= int64(c)
	return c, nil
}

// bigBody returns a Kazoo body whose media part is size bytes from media.
func bigBody(media io.Reader) io.Reader {
	head := kazooBody(kazooBoundary, kazooPart{"D", "application/json", []byte(`{"id":"D"}`)})
	head = head[:len(head)-len(kazooBoundary)-6] // drop the close delimiter
	head = append(head, "\r\n--"+kazooBoundary+"\r\ncontent-disposition: form-data; name=N.mp3\r\ncontent-type: audio/mpeg\r\n\r\n"...)
	return io.MultiReader(bytes.NewReader(head), media, strings.NewReader("\r\n--"+kazooBoundary+"--"))
}

// TestMultipartLarge streams 64 MiB of random media and checks it by SHA-256 and that
// memory stays bounded.
func TestMultipartLarge(t *testing.T) {
	size := int64(64 << 20)
	if testing.Short() {
		size = 4 << 20
	}
	for _, writeTo := range []bool{true, false} {
		rng := mathrand.NewChaCha8([32]byte{1, 2, 3})
		in := sha256.New()
		body := bigBody(io.TeeReader(io.LimitReader(rng, size), in))

		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		mr := NewMultipartReader(body, kazooBoundary)
		if _, err := mr.NextPart(); err != nil {
			t.Fatal(err)
		}
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		out := sha256.New()
		var n int64
		if writeTo {
			n, err = io.Copy(out, p)
		} else {
			n, err = io.CopyBuffer(out, struct{ io.Reader }{p}, make([]byte, 8191))
		}
		if err != nil || n != size {
			t.Fatalf("copied %d bytes, %v", n, err)
		}
		if _, err := mr.NextPart(); err != io.EOF {
			t.Fatalf("after media: %v", err)
		}
		runtime.ReadMemStats(&after)
		if !bytes.Equal(in.Sum(nil), out.Sum(nil)) {
			t.Fatal("SHA-256 of the streamed media differs")
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
			t.Errorf("writeTo=%v: allocated %d bytes for a %d-byte body", writeTo, alloc, size)
		}
	}
}

func BenchmarkMultipart(b *testing.B) {
	const size = 1 << 30
	random := make([]byte, 1<<20)
	mathrand.NewChaCha8([32]byte{}).Read(random)
	// Worst case: every line nearly a delimiter.
	near := bytes.Repeat([]byte("\r\n--"+kazooBoundary[:63]+"\n"), 1<<20/70)
	writeTo := func(w io.Writer, p *Part) (int64, error) { return io.Copy(w, p) }
	read32K := func(w io.Writer, p *Part) (int64, error) {
		return io.CopyBuffer(w, struct{ io.Reader }{p}, make([]byte, 32<<10))
	}
	for _, bc := range []struct {
		name  string
		block []byte
		copy  func(io.Writer, *Part) (int64, error)
	}{
		{"WriteTo", random, writeTo},
		{"Read32K", random, read32K},
		{"NearBoundary", near, writeTo},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				mr := NewMultipartReader(bigBody(&chunkReader{block: bc.block, n: size}), kazooBoundary)
				mr.NextPart()
				p, err := mr.NextPart()
				if err != nil {
					b.Fatal(err)
				}
				if n, err := bc.copy(io.Discard, p); n != size || err != nil {
					b.Fatal(n, err)
				}
			}
		})
	}
}
