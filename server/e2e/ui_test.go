package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// sineWAV returns a WAV file of secs seconds of a 440 Hz tone: 16-bit mono
// PCM at 8 kHz, which every browser plays.
func sineWAV(secs int) []byte {
	const rate = 8000
	n := secs * rate
	var b bytes.Buffer
	w := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	w(uint32(36 + 2*n))
	b.WriteString("WAVEfmt ")
	w(uint32(16))
	w(uint16(1)) // PCM
	w(uint16(1)) // mono
	w(uint32(rate))
	w(uint32(2 * rate)) // bytes per second
	w(uint16(2))        // block align
	w(uint16(16))       // bits per sample
	b.WriteString("data")
	w(uint32(2 * n))
	for i := range n {
		w(int16(8000 * math.Sin(2*math.Pi*440*float64(i)/rate)))
	}
	return b.Bytes()
}

// storeVoicemail stores a voicemail as Kazoo does with send_multipart: the
// document's JSON, then the media.
func storeVoicemail(t *testing.T, s *server, path, name, number, mailbox string, at time.Time, wav []byte) {
	t.Helper()
	doc := kazooDoc{ID: path[strings.LastIndexByte(path, '/')+1:], Public: object{
		{"caller_id_name", name}, {"caller_id_number", number}, {"mailbox", mailbox},
		{"timestamp", int(at.Unix() + 62167219200)}, {"length", 6000}, {"folder", "new"},
	}}
	body := multipartBody("b0undary", doc, "message.wav", "audio/wav", wav)
	req, _ := http.NewRequest(http.MethodPut, s.baseURL()+path+"/message.wav", bytes.NewReader(body))
	req.Header.Set("Content-Type", "multipart/mixed; boundary=b0undary")
	req.SetBasicAuth("kazoo", "kazoo-pw")
	resp, err := s.httpClient(30 * time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("store %s: %d", path, resp.StatusCode)
	}
}

// browser starts headless Chromium (Debian's chromium package, which
// test.sh installs) and returns a context driving one tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: apt-get install chromium (./test.sh does)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // root in CI
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func act(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// navigate runs actions that load another page, and waits until it has
// loaded: an element both pages have would otherwise be found on the old one.
func navigate(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	if _, err := chromedp.RunResponse(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// screenshot saves the page to $ATTACHD_UI_SCREENSHOTS/name, when that is
// set (docs/ui-*.png are made so), as PNG (quality 100).
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("ATTACHD_UI_SCREENSHOTS")
	if dir == "" {
		return
	}
	var png []byte
	act(t, ctx, "screenshot "+name, chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func signIn(t *testing.T, ctx context.Context, base, user, password string) {
	t.Helper()
	act(t, ctx, "sign in as "+user,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(`#login-form`, chromedp.ByQuery),
		chromedp.SendKeys(`#user`, user, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, password, chromedp.ByQuery),
		chromedp.Click(`#sign-in`, chromedp.ByQuery),
		chromedp.WaitVisible(`#messages`, chromedp.ByQuery),
	)
}

// TestUIInBrowser drives the voicemail browser in headless Chromium against
// the real binary: sign in, search a caller, open a message, play it (the
// audio element's time advances on a real WAV), seek, delete as a rw user,
// be refused as a read-only one, and fit a phone's screen.
func TestUIInBrowser(t *testing.T) {
	s := startServer(t, serverOptions{Config: &config{Users: []user{
		{"kazoo", "kazoo-pw", "rw"}, {"alice-admin", "admin-pw", "rw"}, {"support", "support-pw", "r"},
	}}})
	const acct = "4e3005310add6229778caf6babfe7cfb"
	wav := sineWAV(6)
	day := time.Now().Add(-48 * time.Hour).Truncate(time.Hour)
	storeVoicemail(t, s, "/kazoo/"+acct+"/201905-6a4ea9b1c4e3f7a8b6a6e7c0e4a1d2f3", "Alice Martin", "+14155550101", "1001", day, wav)
	storeVoicemail(t, s, "/kazoo/"+acct+"/201905-7b5fb0c2d5f4a8b9c7b7f8d1f5b2e3a4", "Bob Okafor", "+14155550102", "1001", day.Add(time.Hour), wav)
	storeVoicemail(t, s, "/kazoo/"+acct+"/201905-8c6ac1d3e6a5b9cad8c8a9e2a6c3f4b5", "Chen Wei", "+442071838750", "1002", day.Add(2*time.Hour), wav)
	storeVoicemail(t, s, "/kazoo/"+acct+"/201905-9d7bd2e4f7b6cadbe9d9baf3b7d4a5c6", "Dana Alvarez", "+14155550104", "1003", day.Add(3*time.Hour), wav)
	base := s.baseURL()
	ctx := browser(t)

	signIn(t, ctx, base, "alice-admin", "admin-pw")
	var rows int
	act(t, ctx, "inbox", chromedp.Evaluate(`document.querySelectorAll("#messages tbody tr").length`, &rows))
	if rows != 4 {
		t.Fatalf("inbox: %d rows, want 4", rows)
	}
	screenshot(t, ctx, "ui-inbox.png")

	// Search a caller by part of the name, then by part of the number.
	var names string
	// The inbox has #messages too: wait for the results page to load
	// before looking for it.
	navigate(t, ctx, "search by name",
		chromedp.SendKeys(`#q`, "alic", chromedp.ByQuery),
		chromedp.Submit(`#search-form`, chromedp.ByQuery))
	act(t, ctx, "search results",
		chromedp.WaitVisible(`#messages`, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll("#messages .name")].map(e => e.textContent).join(",")`, &names))
	if names != "Alice Martin" {
		t.Fatalf("search alic: %q", names)
	}
	var url string
	act(t, ctx, "search URL", chromedp.Location(&url))
	if !strings.Contains(url, "q=alic") {
		t.Errorf("the search is not in its URL: %s", url)
	}

	// Open the message and play it.
	act(t, ctx, "open the message",
		chromedp.Click(`#messages a.caller`, chromedp.ByQuery),
		chromedp.WaitVisible(`#audio`, chromedp.ByQuery))
	var played float64
	act(t, ctx, "play",
		chromedp.Evaluate(`document.getElementById("audio").play().then(() => true)`, nil, awaitPromise),
		chromedp.Poll(`document.getElementById("audio").currentTime > 1`, nil, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Evaluate(`document.getElementById("audio").currentTime`, &played))
	if played <= 1 {
		t.Fatalf("currentTime %v after playing", played)
	}
	// Seek ahead, by the page's own +10 s button, then by setting the time:
	// the browser reads from there with a Range request.
	var seeked float64
	act(t, ctx, "seek",
		chromedp.Evaluate(`(() => { const a = document.getElementById("audio"); a.pause(); a.currentTime = 0.5; return true })()`, nil),
		chromedp.Click(`button[data-seek="10"]`, chromedp.ByQuery),
		chromedp.Poll(`document.getElementById("audio").currentTime > 5`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Evaluate(`new Promise(r => { const a = document.getElementById("audio"); a.addEventListener("seeked", () => r(a.currentTime), {once: true}); a.currentTime = 3; })`, &seeked, awaitPromise))
	if seeked < 2.9 || seeked > 3.1 {
		t.Errorf("after seeking to 3 s: currentTime %v", seeked)
	}
	var seekable float64
	act(t, ctx, "seekable", chromedp.Evaluate(`document.getElementById("audio").seekable.end(0)`, &seekable))
	if seekable < 5.9 {
		t.Errorf("seekable to %v s of 6", seekable)
	}
	screenshot(t, ctx, "ui-player.png")

	// Delete it, confirming.
	act(t, ctx, "delete",
		chromedp.Click(`#delete`, chromedp.ByQuery),
		chromedp.WaitVisible(`#confirm-delete`, chromedp.ByQuery),
		chromedp.Click(`#confirm-delete`, chromedp.ByQuery),
		chromedp.WaitVisible(`.notice`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#messages tbody tr").length`, &rows))
	if rows != 3 {
		t.Errorf("after delete: %d rows, want 3", rows)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/kazoo/"+acct+"/201905-6a4ea9b1c4e3f7a8b6a6e7c0e4a1d2f3/message.wav", nil)
	req.SetBasicAuth("kazoo", "kazoo-pw")
	if resp, err := s.httpClient(10 * time.Second).Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("Kazoo fetch of the deleted message: %v %v", resp.StatusCode, err)
	}

	// A read-only user sees no delete button, and is refused at the form.
	act(t, ctx, "sign out",
		chromedp.Click(`.who button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#login-form`, chromedp.ByQuery))
	signIn(t, ctx, base, "support", "support-pw")
	var hasDelete bool
	var refused string
	act(t, ctx, "read-only",
		chromedp.Click(`#messages a.caller`, chromedp.ByQuery),
		chromedp.WaitVisible(`#audio`, chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById("delete") !== null`, &hasDelete),
		chromedp.Navigate(base+"/ui/delete?p=kazoo/"+acct+"/201905-9d7bd2e4f7b6cadbe9d9baf3b7d4a5c6/message.wav"),
		chromedp.Text(`main`, &refused, chromedp.ByQuery))
	if hasDelete {
		t.Error("read-only user offered a delete button")
	}
	if !strings.Contains(refused, "403") || !strings.Contains(refused, "read-only") {
		t.Errorf("read-only delete form: %q", refused)
	}

	// A phone: the inbox fits the width, one message per block.
	var fits bool
	var headHidden bool
	act(t, ctx, "phone",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile),
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(`#messages`, chromedp.ByQuery),
		chromedp.Evaluate(`document.documentElement.scrollWidth <= window.innerWidth + 1`, &fits),
		chromedp.Evaluate(`getComputedStyle(document.querySelector("#messages thead")).display === "none"`, &headHidden))
	if !fits || !headHidden {
		t.Errorf("phone width: fits %v, table head hidden %v", fits, headHidden)
	}
}

func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }
