package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/attachd/attachd/plugins/sdk"
)

// Limits on what a receiver may send back.
const (
	maxBody        = 64 << 10 // bytes of a 2xx body read for annotations
	maxAnnotations = 64       // annotations kept from one answer
	maxKey         = 128      // bytes in an annotation's key
	maxValue       = 4 << 10  // bytes in an annotation's value; longer ones are cut
	maxRetryAfter  = 24 * time.Hour
	snippetLen     = 256 // bytes of an error body quoted in a message
)

// defaultTimeout bounds one POST, from dialling to reading the answer.
const defaultTimeout = 10 * time.Second

// configTable is the [plugin.webhook.config] table; any key may instead be set
// in [plugin.webhook.secrets], where secret belongs.
type configTable struct {
	URL     string `json:"url"`     // http or https; required
	Secret  string `json:"secret"`  // HMAC-SHA256 key; no signature header if empty
	Timeout string `json:"timeout"` // Go duration; default "10s"
}

// settings is a checked config, ready to deliver with.
type settings struct {
	url     *url.URL
	secret  []byte
	timeout time.Duration
	client  *http.Client
}

// webhook is the hook. Configure may run again (after a restart of the
// plugin the host configures the new process, but a host may also
// reconfigure), so the settings are swapped atomically.
type webhook struct {
	settings atomic.Pointer[settings]
}

// Configure implements sdk.Configurer. It checks the table but does not
// contact the receiver: a receiver that is down must not stop attachd.
func (w *webhook) Configure(ctx context.Context, c sdk.Config) error {
	var cfg configTable
	if err := c.Decode(&cfg); err != nil {
		return err
	}
	s, err := cfg.check()
	if err != nil {
		return err
	}
	w.settings.Store(s)
	return nil
}

// check validates cfg and turns it into settings; errors name the key.
func (cfg configTable) check() (*settings, error) {
	if cfg.URL == "" {
		return nil, sdk.ConfigError("url", "must be set, e.g. \"https://crm.example.com/attachd\"")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, sdk.ConfigError("url", "%v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, sdk.ConfigError("url", "want an http:// or https:// URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, sdk.ConfigError("url", "has no host: %q", u.Redacted())
	}
	timeout := defaultTimeout
	if cfg.Timeout != "" {
		d, err := time.ParseDuration(cfg.Timeout)
		if err != nil || d <= 0 {
			return nil, sdk.ConfigError("timeout", "want a positive duration like \"10s\", got %q", cfg.Timeout)
		}
		timeout = d
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16 // deliveries to one receiver run concurrently
	return &settings{
		url:     u,
		secret:  []byte(cfg.Secret),
		timeout: timeout,
		client: &http.Client{
			Transport: tr,
			// A POST must not turn into a GET on a 302, nor carry the
			// signature to wherever a receiver points: redirects are
			// reported, not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// Deliver implements sdk.Hook: one POST of the event.
func (w *webhook) Deliver(ctx context.Context, ev sdk.Event) (sdk.Result, error) {
	s := w.settings.Load()
	if s == nil {
		return sdk.Result{}, errors.New("webhook: not configured")
	}
	body := []byte(ev.Raw)
	if len(body) == 0 {
		var err error
		if body, err = json.Marshal(ev); err != nil {
			return sdk.Result{Outcome: sdk.Fail, Message: fmt.Sprintf("webhook: encode event: %v", err)}, nil
		}
	}
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(tctx, http.MethodPost, s.url.String(), bytes.NewReader(body))
	if err != nil {
		return sdk.Result{Outcome: sdk.Fail, Message: fmt.Sprintf("webhook: %v", err)}, nil
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "attachd-webhook/"+version)
	req.Header.Set("X-Attachd-Event-Id", ev.EventID)
	req.Header.Set("X-Attachd-Event-Type", ev.Type)
	req.Header.Set("X-Attachd-Attempt", strconv.Itoa(ev.Attempt))
	if len(s.secret) > 0 {
		req.Header.Set("X-Attachd-Signature", Sign(s.secret, body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		msg := fmt.Sprintf("POST %s: %v", s.url.Redacted(), unwrapURLError(err))
		if tctx.Err() != nil && ctx.Err() == nil {
			msg = fmt.Sprintf("POST %s: no answer within timeout %v", s.url.Redacted(), s.timeout)
		}
		return sdk.Result{Outcome: sdk.Retry, Message: msg}, nil
	}
	defer resp.Body.Close()
	return s.result(resp), nil
}

// Sign returns the X-Attachd-Signature header value for body:
// "sha256=" and the hex HMAC-SHA256 of body keyed with secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// result maps the receiver's answer to an outcome.
func (s *settings) result(resp *http.Response) sdk.Result {
	code := resp.StatusCode
	switch {
	case code >= 200 && code <= 299:
		return accepted(resp)
	case code == http.StatusTooManyRequests || code >= 500 && code <= 599:
		return sdk.Result{
			Outcome:    sdk.Retry,
			RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Message:    s.statusMessage(resp),
		}
	case code >= 300 && code <= 399:
		msg := s.statusMessage(resp)
		if loc := resp.Header.Get("Location"); loc != "" {
			msg += fmt.Sprintf(" (redirects are not followed: set url to %q if that is the receiver)", snippet([]byte(loc)))
		}
		return sdk.Result{Outcome: sdk.Fail, Message: msg}
	default:
		return sdk.Result{Outcome: sdk.Fail, Message: s.statusMessage(resp)}
	}
}

// statusMessage describes a refusal: the status and the start of the body.
func (s *settings) statusMessage(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, snippetLen))
	msg := fmt.Sprintf("POST %s: %s", s.url.Redacted(), resp.Status)
	if t := snippet(b); t != "" {
		msg += ": " + t
	}
	return msg
}

// accepted reads the annotations, if any, from a 2xx answer. The event is
// delivered whatever the body holds; a body that cannot be used only adds
// a note to the message.
func accepted(resp *http.Response) sdk.Result {
	res := sdk.Result{Outcome: sdk.OK}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	switch {
	case err != nil:
		res.Message = fmt.Sprintf("delivered; annotations ignored: read answer: %v", err)
		return res
	case len(b) > maxBody:
		res.Message = fmt.Sprintf("delivered; annotations ignored: answer longer than %d bytes", maxBody)
		return res
	case len(bytes.TrimSpace(b)) == 0 || !isJSON(resp.Header.Get("Content-Type"), b):
		return res
	}
	var answer struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(b, &answer); err != nil {
		res.Message = fmt.Sprintf("delivered; annotations ignored: %v", err)
		return res
	}
	res.Annotations, res.Message = bound(answer.Annotations)
	if res.Message != "" {
		res.Message = "delivered; " + res.Message
	}
	return res
}

// isJSON reports whether an answer is meant as JSON: by its content type,
// or, when that is missing or generic, by looking like an object.
func isJSON(contentType string, b []byte) bool {
	ct, _, _ := strings.Cut(strings.ToLower(contentType), ";")
	ct = strings.TrimSpace(ct)
	if ct == "application/json" || strings.HasSuffix(ct, "+json") {
		return true
	}
	if ct == "" || ct == "text/plain" || ct == "application/octet-stream" {
		return bytes.HasPrefix(bytes.TrimSpace(b), []byte("{"))
	}
	return false
}

// bound keeps at most maxAnnotations annotations with valid keys, cutting
// values to maxValue bytes, and says what it dropped.
func bound(in map[string]string) (map[string]string, string) {
	if len(in) == 0 {
		return nil, ""
	}
	keys := make([]string, 0, len(in))
	var bad []string
	for k := range in {
		if validKey(k) {
			keys = append(keys, k)
		} else {
			bad = append(bad, strconv.Quote(snippet([]byte(k))))
		}
	}
	// Keep a deterministic set when there are too many.
	slices.Sort(keys)
	var notes []string
	if len(keys) > maxAnnotations {
		notes = append(notes, fmt.Sprintf("%d annotations beyond the first %d dropped", len(keys)-maxAnnotations, maxAnnotations))
		keys = keys[:maxAnnotations]
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		notes = append(notes, "annotations with invalid keys dropped: "+strings.Join(bad, ", "))
	}
	out := make(map[string]string, len(keys))
	cut := 0
	for _, k := range keys {
		v := in[k]
		if len(v) > maxValue {
			v = truncateUTF8(v, maxValue)
			cut++
		}
		out[k] = v
	}
	if cut > 0 {
		notes = append(notes, fmt.Sprintf("%d annotation values cut to %d bytes", cut, maxValue))
	}
	return out, strings.Join(notes, "; ")
}

// validKey accepts 1 to maxKey letters, digits, '.', '_' and '-'.
func validKey(k string) bool {
	if k == "" || len(k) > maxKey {
		return false
	}
	for _, r := range k {
		if !(r == '.' || r == '_' || r == '-' || r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
// Anything else, or a time in the past, is no hint (0).
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now).Round(time.Second)
	}
	return min(max(d, 0), maxRetryAfter)
}

// snippet makes the start of b fit for a one-line message.
func snippet(b []byte) string {
	if len(b) > snippetLen {
		b = b[:snippetLen]
	}
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// unwrapURLError drops the "Post \"url\": " prefix net/http puts on
// transport errors; the message names the (redacted) URL itself.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
