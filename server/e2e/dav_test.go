package e2e

// End-to-end tests of the WebDAV drive at /dav/ with real clients: litmus,
// rclone (copy and mount), davfs2 and cadaver, plus Kazoo/WebDAV interplay,
// scoped users and a crash during a WebDAV PUT. They reuse this package's
// TestMain and server helpers (main_test.go). A missing client tool skips
// its test with the reason, except with CI=true, where it fails: test.sh
// installs them (apt: litmus cadaver rclone davfs2 fuse3).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	davAcct  = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a" // a Kazoo account id
	davOther = "6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b" // another account
)

// davMissing skips the test for a missing tool, or fails it in CI, where
// test.sh has installed everything.
func davMissing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s", why)
	}
	t.Skip(why)
}

func davNeedTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if strings.HasPrefix(tool, "/") {
			if _, err := os.Stat(tool); err != nil {
				davMissing(t, tool+" is missing (apt-get install litmus)")
			}
			continue
		}
		if _, err := exec.LookPath(tool); err != nil {
			davMissing(t, tool+" is not installed (apt-get install "+tool+")")
		}
	}
}

// davNeedFUSE skips without FUSE: only when the kernel has none, and never in CI.
func davNeedFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		davMissing(t, "/dev/fuse is absent: this kernel has no FUSE")
	}
}

// davStart starts attachd with the given TOML (or none) on its own data directory.
func davStart(t *testing.T, toml string) *server {
	t.Helper()
	var cfg *config
	if toml != "" {
		cfg = &config{Extra: toml}
	}
	return startServer(t, serverOptions{Config: cfg})
}

func (s *server) davURL(p string) string {
	return "http://" + s.Addr + "/dav/" + strings.TrimPrefix(p, "/")
}

// davDo sends one request and reads the whole answer.
func davDo(t *testing.T, method, url string, hdr map[string]string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return res.StatusCode, res.Header, b
}

// davKazooPut stores body the way Kazoo does: a raw PUT on the Kazoo route,
// with the voicemail's metadata in the query (docs/kazoo.md §2, §4).
func davKazooPut(t *testing.T, s *server, key string, body []byte, query string) {
	t.Helper()
	code, _, b := davDo(t, "PUT", "http://"+s.Addr+"/"+key+"?"+query, map[string]string{"Content-Type": "audio/mpeg"}, body)
	if code != http.StatusCreated {
		t.Fatalf("Kazoo-style PUT %s: %d %s", key, code, b)
	}
}

func davRun(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var litmusSummary = regexp.MustCompile("<- summary for `(\\w+)': of (\\d+) tests run: (\\d+) passed, (\\d+) failed")

// TestDAVLitmus runs the five litmus suites; any failed or skipped test fails.
func TestDAVLitmus(t *testing.T) {
	t.Parallel()
	suites := map[string]int{"basic": 16, "copymove": 13, "props": 30, "locks": 41, "http": 4}
	for s := range suites {
		davNeedTools(t, "/usr/libexec/litmus/"+s)
	}
	srv := davStart(t, "")
	total := 0
	for _, suite := range []string{"basic", "copymove", "props", "locks", "http"} {
		dir := t.TempDir() // litmus writes debug.log and child.log here
		cmd := exec.Command("/usr/libexec/litmus/"+suite, "--htdocs", "/usr/share/litmus/htdocs", srv.davURL(""))
		cmd.Dir = dir
		out, _ := cmd.CombinedOutput() // it exits with its failure count; the summary says more
		m := litmusSummary.FindStringSubmatch(string(out))
		if m == nil {
			t.Errorf("litmus %s: no summary line:\n%s", suite, out)
			continue
		}
		run, _ := strconv.Atoi(m[2])
		passed, _ := strconv.Atoi(m[3])
		total += passed
		if m[4] != "0" || run != suites[suite] || passed != run || strings.Contains(string(out), "skipped") {
			log, _ := os.ReadFile(filepath.Join(dir, "debug.log"))
			if len(log) > 8000 {
				log = log[len(log)-8000:]
			}
			t.Errorf("litmus %s: %s, want %d of %d passed, none skipped:\n%s\n--- debug.log (tail) ---\n%s",
				suite, m[0], suites[suite], suites[suite], out, log)
		}
		t.Logf("litmus %s: %s", suite, m[0])
	}
	if total != 104 {
		t.Errorf("litmus: %d of 104 passed", total)
	}
}

// davTree writes a tree of files to copy up and returns its files' contents.
func davTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"a.txt":                       []byte("hello\n"),
		"empty.bin":                   {},
		"sub/big.bin":                 davRandom(t, 5<<20+123),
		"sub/deeper/voicemail 01.mp3": davRandom(t, 70_000),
		"sub/ünïcödé → name.wav":      davRandom(t, 1234),
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func davRandom(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// davSameTree fails unless dir holds exactly the files of want.
func davSameTree(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	got := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			got[filepath.ToSlash(rel)], _ = os.ReadFile(p)
		}
		return nil
	})
	for name, b := range want {
		if g, ok := got[name]; !ok || !bytes.Equal(g, b) {
			t.Errorf("%s: %d bytes back (present %v), want %d identical bytes", name, len(g), ok, len(b))
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d files back, want %d", len(got), len(want))
	}
}

func davRcloneEnv(srv *server) []string {
	return append(os.Environ(), "RCLONE_CONFIG=/dev/null", "RCLONE_CONFIG_X_TYPE=webdav",
		"RCLONE_CONFIG_X_URL="+srv.davURL(""), "RCLONE_CONFIG_X_VENDOR=other")
}

// TestDAVRclone copies a tree up with rclone, checks it byte by byte,
// copies it back, and then reads and writes through `rclone mount`.
func TestDAVRclone(t *testing.T) {
	t.Parallel()
	davNeedTools(t, "rclone")
	srv := davStart(t, "")
	env := davRcloneEnv(srv)
	src := t.TempDir()
	files := davTree(t, src)
	work := t.TempDir()
	davRun(t, work, env, "rclone", "copy", src, "X:rc-up")
	out := davRun(t, work, env, "rclone", "check", "--download", src, "X:rc-up")
	if !strings.Contains(out, "0 differences found") {
		t.Errorf("rclone check --download:\n%s", out)
	}
	back := t.TempDir()
	davRun(t, work, env, "rclone", "copy", "X:rc-up", back)
	davSameTree(t, back, files)

	t.Run("mount", func(t *testing.T) {
		davNeedFUSE(t)
		davNeedTools(t, "fusermount3")
		mnt := t.TempDir()
		cmd := exec.Command("rclone", "mount", "X:", mnt, "--vfs-cache-mode", "writes",
			"--cache-dir", t.TempDir(), "--vfs-write-back", "1s", "--dir-cache-time", "1s")
		cmd.Env = env
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			exec.Command("fusermount3", "-u", mnt).Run()
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
		big := filepath.Join(mnt, "rc-up", "sub", "big.bin")
		var got []byte
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if got, err = os.ReadFile(big); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("reading through rclone mount: %v\n%s", err, log.String())
		}
		if !bytes.Equal(got, files["sub/big.bin"]) {
			t.Fatalf("rclone mount read %d bytes, not the file", len(got))
		}
		written := davRandom(t, 300_000)
		if err := os.WriteFile(filepath.Join(mnt, "rc-up", "written-by-mount.bin"), written, 0o644); err != nil {
			t.Fatalf("writing through rclone mount: %v", err)
		}
		var code int
		var body []byte
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			if code, _, body = davDo(t, "GET", srv.davURL("rc-up/written-by-mount.bin"), nil, nil); code == 200 && bytes.Equal(body, written) {
				break
			}
		}
		if code != 200 || !bytes.Equal(body, written) {
			t.Fatalf("file written through rclone mount: GET %d, %d bytes\n%s", code, len(body), log.String())
		}
		if err := exec.Command("fusermount3", "-u", mnt).Run(); err != nil {
			t.Errorf("fusermount3 -u: %v", err)
		}
	})
}

// TestDAVDavfs2 mounts the drive with davfs2 (buf_size 64, needed on
// kernels ≥ 6.16), lists it, reads a file Kazoo stored, writes one and
// unmounts, which uploads it.
func TestDAVDavfs2(t *testing.T) {
	t.Parallel()
	davNeedFUSE(t)
	davNeedTools(t, "mount.davfs")
	if os.Geteuid() != 0 {
		davMissing(t, "mounting davfs2 needs root")
	}
	srv := davStart(t, "")
	voicemail := davRandom(t, 200_000)
	davKazooPut(t, srv, davAcct+"/vm1/vm1.mp3", voicemail, "caller_id_name=Carol&mailbox=3000")

	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	os.WriteFile(secrets, []byte(srv.davURL("")+` "" ""`+"\n"), 0o600)
	conf := filepath.Join(dir, "davfs2.conf")
	// The default cache_dir: mount.davfs runs as the davfs2 user, which
	// cannot enter the test's private temporary directories.
	os.WriteFile(conf, []byte("buf_size 64\nuse_locks 1\ndelay_upload 0\nsecrets "+secrets+"\n"), 0o600)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	cmd := exec.Command("mount", "-t", "davfs", "-o", "conf="+conf, srv.davURL(""), mnt)
	cmd.Stdin = nil // /dev/null: with a secrets file davfs2 asks nothing
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mount -t davfs: %v\n%s", err, out)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	entries, err := os.ReadDir(filepath.Join(mnt, davAcct, "vm1"))
	if err != nil || len(entries) != 1 || entries[0].Name() != "vm1.mp3" {
		t.Fatalf("listing the davfs2 mount: %v %v", entries, err)
	}
	got, err := os.ReadFile(filepath.Join(mnt, davAcct, "vm1", "vm1.mp3"))
	if err != nil || !bytes.Equal(got, voicemail) {
		t.Fatalf("reading a Kazoo-stored file through davfs2: %d bytes, %v", len(got), err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "@by-date", davAcct)); err != nil {
		t.Errorf("@by-date through davfs2: %v", err)
	}
	written := davRandom(t, 1<<20)
	if err := os.WriteFile(filepath.Join(mnt, "from-davfs2.bin"), written, 0o644); err != nil {
		t.Fatalf("writing through davfs2: %v", err)
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	mounted = false
	code, _, body := davDo(t, "GET", srv.davURL("from-davfs2.bin"), nil, nil)
	if code != 200 || !bytes.Equal(body, written) {
		t.Fatalf("file written through davfs2: GET %d, %d bytes", code, len(body))
	}
}

// TestDAVCadaver runs a cadaver script. cadaver always exits 0, so its
// output is read: every command must say "succeeded".
func TestDAVCadaver(t *testing.T) {
	t.Parallel()
	davNeedTools(t, "cadaver")
	srv := davStart(t, "")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c1.txt"), []byte("cadaver was here\n"), 0o644)
	script := "mkcol cadtest\ncd cadtest\nput c1.txt\nget c1.txt c1.back\npropnames c1.txt\nlock c1.txt\n" +
		"unlock c1.txt\nmove c1.txt c2.txt\ndelete c2.txt\ncd ..\nrmcol cadtest\nquit\n"
	cmd := exec.Command("cadaver", srv.davURL(""))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir) // no ~/.netrc, no ~/.cadaverrc
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cadaver: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"Creating `cadtest': succeeded", "to `/dav/cadtest/c1.txt':", "Downloading `/dav/cadtest/c1.txt'",
		"DAV: getetag", "Locking `c1.txt': succeeded", "Unlocking `c1.txt': succeeded",
		"to `/dav/cadtest/c2.txt':  succeeded", "Deleting `c2.txt': succeeded", "Deleting collection `cadtest': succeeded"} {
		if !strings.Contains(text, want) {
			t.Errorf("cadaver output lacks %q", want)
		}
	}
	if strings.Contains(text, "failed") || strings.Count(text, "succeeded") < 9 {
		t.Errorf("cadaver script did not succeed throughout:\n%s", text)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "c1.back")); err != nil || string(b) != "cadaver was here\n" {
		t.Errorf("cadaver get: %q %v", b, err)
	}
}

// TestDAVKazooInterop: what Kazoo stores shows up over WebDAV with its
// metadata and in @by-date, and what WebDAV writes Kazoo can fetch.
func TestDAVKazooInterop(t *testing.T) {
	t.Parallel()
	srv := davStart(t, "")
	at := time.Date(2026, 11, 25, 14, 3, 9, 0, time.UTC)
	greg := at.Unix() + 62167219200 // Kazoo's Gregorian seconds (docs/kazoo.md §4)
	media := davRandom(t, 48_000)
	davKazooPut(t, srv, davAcct+"/201911-abc/vm.mp3", media,
		"caller_id_name=Dave+Smith&caller_id_number=%2B15551234&mailbox=4000&length=7300&folder=new&timestamp="+strconv.FormatInt(greg, 10))

	code, hdr, _ := davDo(t, "GET", srv.davURL(davAcct+"/201911-abc/vm.mp3"), nil, nil)
	etag := hdr.Get("ETag")
	if code != 200 || etag == "" {
		t.Fatalf("GET over WebDAV: %d ETag %q", code, etag)
	}
	code, _, body := davDo(t, "PROPFIND", srv.davURL(davAcct+"/201911-abc/"), map[string]string{"Depth": "1"}, nil)
	if code != 207 {
		t.Fatalf("PROPFIND: %d %s", code, body)
	}
	for _, want := range []string{"<A:caller-id-name>Dave Smith</A:caller-id-name>", "<A:caller-id-number>+15551234</A:caller-id-number>",
		"<A:mailbox>4000</A:mailbox>", "<A:length>7300</A:length>", "<A:timestamp>2026-11-25T14:03:09Z</A:timestamp>",
		"<D:getetag>" + etag + "</D:getetag>", "<D:getcontenttype>audio/mpeg</D:getcontenttype>"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("PROPFIND lacks %s:\n%s", want, body)
		}
	}

	// @by-date is in the server's local time zone: find the day listed.
	code, _, body = davDo(t, "PROPFIND", srv.davURL("@by-date/"+davAcct+"/"), map[string]string{"Depth": "1"}, nil)
	days := regexp.MustCompile(`<D:href>[^<]*/(\d{4}-\d\d-\d\d)/</D:href>`).FindAllSubmatch(body, -1)
	if code != 207 || len(days) != 1 {
		t.Fatalf("@by-date/%s: %d, days %q\n%s", davAcct, code, days, body)
	}
	code, _, body = davDo(t, "PROPFIND", srv.davURL("@by-date/"+davAcct+"/"+string(days[0][1])+"/"), map[string]string{"Depth": "1"}, nil)
	files := regexp.MustCompile(`<D:href>([^<]*Dave[^<]*)</D:href>`).FindAllSubmatch(body, -1)
	if code != 207 || len(files) != 1 || !bytes.Contains(files[0][1], []byte("4000.mp3")) {
		t.Fatalf("@by-date day listing: %d %q\n%s", code, files, body)
	}
	code, hdr, got := davDo(t, "GET", "http://"+srv.Addr+string(files[0][1]), nil, nil)
	if code != 200 || hdr.Get("ETag") != etag || !bytes.Equal(got, media) {
		t.Fatalf("GET %s: %d ETag %s, want the same object %s", files[0][1], code, hdr.Get("ETag"), etag)
	}

	// Written over WebDAV, fetched by Kazoo.
	up := davRandom(t, 33_333)
	if code, _, b := davDo(t, "PUT", srv.davURL(davAcct+"/201911-abc/greeting.mp3"), nil, up); code != 201 {
		t.Fatalf("WebDAV PUT: %d %s", code, b)
	}
	code, _, got = davDo(t, "GET", "http://"+srv.Addr+"/"+davAcct+"/201911-abc/greeting.mp3", nil, nil)
	if code != 200 || !bytes.Equal(got, up) {
		t.Fatalf("Kazoo-style GET of a WebDAV-written file: %d, %d bytes", code, len(got))
	}
}

// TestDAVScopedUsers: a read-only user rooted at one account cannot read or
// write outside it by any route, with real Basic authentication.
func TestDAVScopedUsers(t *testing.T) {
	t.Parallel()
	hash := func(p string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	toml := fmt.Sprintf("[[users]]\nname = \"admin\"\npassword_hash = %q\npermissions = \"rw\"\n\n"+
		"[[users]]\nname = \"cust\"\npassword_hash = %q\nroot = \"/%s\"\npermissions = \"r\"\n",
		hash("adminpw"), hash("custpw"), davAcct)
	srv := davStart(t, toml)
	as := func(user, pass string) map[string]string {
		return map[string]string{"Authorization": "Basic " + basicAuth(user, pass)}
	}
	admin, cust := as("admin", "adminpw"), as("cust", "custpw")
	for _, k := range []string{davAcct + "/d1/mine.mp3", davOther + "/d2/theirs.mp3"} {
		if code, _, b := davDo(t, "PUT", "http://"+srv.Addr+"/"+k, admin, []byte("data of "+k)); code != 201 {
			t.Fatalf("admin PUT %s: %d %s", k, code, b)
		}
	}
	if code, hdr, _ := davDo(t, "OPTIONS", srv.davURL(""), nil, nil); code != 200 || hdr.Get("DAV") == "" {
		t.Errorf("unauthenticated OPTIONS: %d DAV %q (Windows needs it)", code, hdr.Get("DAV"))
	}
	if code, hdr, _ := davDo(t, "PROPFIND", srv.davURL(""), map[string]string{"Depth": "0"}, nil); code != 401 || hdr.Get("WWW-Authenticate") == "" {
		t.Errorf("unauthenticated PROPFIND: %d, want 401 with a Basic challenge", code)
	}
	if code, _, b := davDo(t, "GET", srv.davURL("d1/mine.mp3"), cust, nil); code != 200 || string(b) != "data of "+davAcct+"/d1/mine.mp3" {
		t.Errorf("cust GET inside its root: %d %q", code, b)
	}
	code, _, b := davDo(t, "PROPFIND", srv.davURL(""), map[string]string{"Depth": "1", "Authorization": cust["Authorization"]}, nil)
	if code != 207 || !bytes.Contains(b, []byte("<D:href>/dav/d1/</D:href>")) || bytes.Contains(b, []byte(davOther)) {
		t.Errorf("cust PROPFIND Depth 1 at its root: %d\n%s", code, b)
	}
	outside := []struct{ method, path, dest string }{
		{"GET", "%2e%2e/" + davOther + "/d2/theirs.mp3", ""},
		{"GET", "..%2F" + davOther + "%2Fd2%2Ftheirs.mp3", ""},
		{"PROPFIND", "%2e%2e/", ""},
		{"PUT", "d1/new.mp3", ""},
		{"DELETE", "d1/mine.mp3", ""},
		{"COPY", "d1/mine.mp3", "/dav/%2e%2e/" + davOther + "/copied.mp3"},
		{"MOVE", "d1/mine.mp3", "/dav/d1/moved.mp3"},
		{"LOCK", "d1/mine.mp3", ""},
		{"MKCOL", "newdir/", ""},
	}
	for _, o := range outside {
		hdr := map[string]string{"Authorization": cust["Authorization"], "Depth": "0"}
		if o.dest != "" {
			hdr["Destination"] = o.dest
		}
		var body []byte
		if o.method == "PUT" {
			body = []byte("x")
		}
		code, _, b := davDo(t, o.method, srv.davURL(o.path), hdr, body)
		if code < 400 || bytes.Contains(b, []byte("data of "+davOther)) {
			t.Errorf("cust %s %s (Destination %q): %d, want a refusal", o.method, o.path, o.dest, code)
		}
	}
	if code, _, b := davDo(t, "GET", "http://"+srv.Addr+"/"+davOther+"/d2/theirs.mp3", admin, nil); code != 200 || string(b) != "data of "+davOther+"/d2/theirs.mp3" {
		t.Errorf("the other account's file changed: %d %q", code, b)
	}
	if code, _, _ := davDo(t, "GET", srv.davURL("d1/mine.mp3"), cust, nil); code != 200 {
		t.Errorf("cust's own file is gone: %d", code)
	}
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// TestDAVCrashMidPut kills attachd (SIGKILL) in the middle of a 200 MiB
// WebDAV PUT over an existing file: after a restart the old version is
// there, whole, and no partial upload is left.
func TestDAVCrashMidPut(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	srv := davStart(t, "")
	old := davRandom(t, 1<<20)
	if code, _, b := davDo(t, "PUT", srv.davURL("big.wav"), nil, old); code != 201 {
		t.Fatalf("PUT of the first version: %d %s", code, b)
	}
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(90 * time.Second))
	w := bufio.NewWriterSize(conn, 1<<20)
	fmt.Fprintf(w, "PUT /dav/big.wav HTTP/1.1\r\nHost: %s\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n", srv.Addr, 200<<20)
	chunk := davRandom(t, 1<<20)
	for range 80 { // 80 of the 200 MiB
		if _, err := w.Write(chunk); err != nil {
			t.Fatalf("sending the body: %v", err)
		}
	}
	w.Flush()
	deadline := time.Now().Add(30 * time.Second)
	for tmpSize(srv.DataDir) < 40<<20 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := tmpSize(srv.DataDir); n < 40<<20 {
		t.Fatalf("only %d bytes of the upload reached tmp/ in 30 s", n)
	}
	srv.kill(t)
	srv.restart(t)
	code, _, got := davDo(t, "GET", srv.davURL("big.wav"), nil, nil)
	if code != 200 || sha256.Sum256(got) != sha256.Sum256(old) {
		t.Fatalf("after kill -9 mid-PUT: GET %d, %d bytes; want the old version whole", code, len(got))
	}
	if n := tmpSize(srv.DataDir); n != 0 {
		t.Errorf("%d bytes of partial upload left in tmp/", n)
	}
}
