package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/attachd/attachd/plugins/sdk"
)

// defaultTimeout bounds one run of the command: transcription takes
// minutes, so the default is generous.
const defaultTimeout = 5 * time.Minute

// exTempFail is sysexits.h's EX_TEMPFAIL: the command asks to be run again.
const exTempFail = 75

// ioDrainTimeout is how long stdout and stderr are read once the command's
// process group is gone, in case something that left the group holds them.
const ioDrainTimeout = 2 * time.Second

// eventDeleted is the type of an event about an object that is gone.
const eventDeleted = "attachment.deleted"

// Content modes: how the command gets the object's bytes.
const (
	contentPath = "path" // a private temporary file, filled before the command starts
	contentPipe = "pipe" // a FIFO, fed while the command runs
	contentNone = "none" // no bytes
)

// configTable is the [plugin.exec.config] table. Any key may instead be
// set in [plugin.exec.secrets]; an env table there is merged into the one
// in config, which is where API keys for the command belong.
type configTable struct {
	Command []string          `json:"command"` // argv; required
	Timeout string            `json:"timeout"` // Go duration; default "5m"
	Env     map[string]string `json:"env"`     // extra environment variables
	Content string            `json:"content"` // "path" (default), "pipe" or "none"
}

// settings is a checked config, ready to run with.
type settings struct {
	path    string   // the command, resolved
	args    []string // argv[1:]
	timeout time.Duration
	env     []string // KEY=value from the env table, sorted
	content string
}

// execHook is the hook.
type execHook struct {
	settings atomic.Pointer[settings]
}

// Configure implements sdk.Configurer.
func (x *execHook) Configure(ctx context.Context, c sdk.Config) error {
	var cfg configTable
	if err := c.Decode(&cfg); err != nil {
		return err
	}
	s, err := cfg.check()
	if err != nil {
		return err
	}
	x.settings.Store(s)
	return nil
}

// check validates cfg and turns it into settings; errors name the key.
func (cfg configTable) check() (*settings, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, sdk.ConfigError("command", `must be set, e.g. ["/usr/local/bin/transcribe", "--lang", "en"]`)
	}
	name := cfg.Command[0]
	if strings.Contains(name, "/") && !filepath.IsAbs(name) {
		return nil, sdk.ConfigError("command", "%q: want an absolute path or a name found in PATH", name)
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, sdk.ConfigError("command", "%v", err)
	}
	for i, a := range cfg.Command {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, sdk.ConfigError("command", "argument %d contains a NUL byte", i)
		}
	}
	s := &settings{path: path, args: slices.Clone(cfg.Command[1:]), timeout: defaultTimeout, content: contentPath}
	if cfg.Timeout != "" {
		d, err := time.ParseDuration(cfg.Timeout)
		if err != nil || d <= 0 {
			return nil, sdk.ConfigError("timeout", "want a positive duration like \"5m\", got %q", cfg.Timeout)
		}
		s.timeout = d
	}
	switch cfg.Content {
	case "":
	case contentPath, contentPipe, contentNone:
		s.content = cfg.Content
	default:
		return nil, sdk.ConfigError("content", "want \"path\", \"pipe\" or \"none\", got %q", cfg.Content)
	}
	for k, v := range cfg.Env {
		if err := checkEnv(k, v); err != nil {
			return nil, sdk.ConfigError("env", "%v", err)
		}
		s.env = append(s.env, k+"="+v)
	}
	slices.Sort(s.env)
	return s, nil
}

// checkEnv accepts a portable variable name that does not shadow what the
// plugin sets itself.
func checkEnv(k, v string) error {
	if k == "" {
		return errors.New("empty variable name")
	}
	for i, r := range k {
		if !(r == '_' || 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || i > 0 && '0' <= r && r <= '9') {
			return fmt.Errorf("variable name %q: want letters, digits and '_', not starting with a digit", k)
		}
	}
	if up := strings.ToUpper(k); strings.HasPrefix(up, "ATTACHD_") || strings.HasPrefix(up, "PLUGIN_") {
		return fmt.Errorf("variable %s: names starting with ATTACHD_ or PLUGIN_ are reserved", k)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("variable %s: value contains a NUL byte", k)
	}
	return nil
}

// Deliver implements sdk.Hook: one run of the command.
func (x *execHook) Deliver(ctx context.Context, ev sdk.Event) (sdk.Result, error) {
	s := x.settings.Load()
	if s == nil {
		return sdk.Result{}, errors.New("exec: not configured")
	}
	// Each run gets a private scratch folder (mode 0700): its working
	// directory, holding the content file or pipe; removed afterwards.
	work, err := os.MkdirTemp("", "attachd-exec-")
	if err != nil {
		return sdk.Result{}, fmt.Errorf("exec: scratch folder: %w", err)
	}
	defer os.RemoveAll(work)

	r := &run{s: s, ev: ev, work: work}
	mode := s.content
	if ev.Type == eventDeleted {
		mode = contentNone // there are no bytes any more
	}
	switch mode {
	case contentPath:
		res, ok := r.contentFile(ctx)
		if !ok {
			return res, nil
		}
	case contentPipe:
		res, ok := r.contentPipe(ctx)
		if !ok {
			return res, nil
		}
		defer r.feed.close()
	}
	return r.run(ctx)
}

// run is one delivery's run of the command.
type run struct {
	s           *settings
	ev          sdk.Event
	work        string
	contentPath string // ATTACHD_CONTENT_PATH; "" for none
	feed        *feeder
}

// skipped answers for a version that is gone: a later event describes
// what replaced it, so this one is done.
func skipped(err error) sdk.Result {
	return sdk.Result{Outcome: sdk.OK, Message: fmt.Sprintf("skipped, this version is gone: %v", err)}
}

// environ returns the command's environment: the plugin's own (which
// attachd already reduced to PATH, TMPDIR, TZ, proxies and certificates),
// without go-plugin's variables, then the env table, then the event.
func (r *run) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if up := strings.ToUpper(k); strings.HasPrefix(up, "ATTACHD_") || strings.HasPrefix(up, "PLUGIN_") {
			continue // the magic cookie, go-plugin's ports and client certificate
		}
		env = append(env, kv)
	}
	env = append(env, r.s.env...)
	o := r.ev.Object
	env = append(env,
		"ATTACHD_EVENT_ID="+r.ev.EventID,
		"ATTACHD_EVENT_TYPE="+r.ev.Type,
		"ATTACHD_ATTEMPT="+strconv.Itoa(r.ev.Attempt),
		"ATTACHD_KEY="+o.Key,
		"ATTACHD_SHA256="+o.SHA256,
		"ATTACHD_SIZE="+strconv.FormatInt(o.Size, 10),
		"ATTACHD_CONTENT_TYPE="+o.ContentType,
	)
	if r.contentPath != "" {
		env = append(env, "ATTACHD_CONTENT_PATH="+r.contentPath)
	}
	return env
}

// run runs the command and maps how it ended to a result.
func (r *run) run(ctx context.Context) (sdk.Result, error) {
	tctx, cancel := context.WithTimeout(ctx, r.s.timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, r.s.path, r.s.args...)
	cmd.Dir = r.work
	cmd.Env = r.environ()
	setProcAttr(cmd)
	// On timeout kill the whole process group: a shell script's children
	// (ffmpeg, curl) must not outlive it.
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	stdout := &annotationWriter{}
	stderr := &tailWriter{}
	pipes, err := startIO(cmd, r.ev.Raw, stdout, stderr)
	if err != nil {
		return sdk.Result{}, fmt.Errorf("exec: %w", err)
	}
	if err := cmd.Start(); err != nil {
		pipes.abort()
		res := sdk.Result{Outcome: sdk.Retry, Message: fmt.Sprintf("start %s: %v", r.s.path, err)}
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.ENOEXEC) {
			res.Outcome = sdk.Fail
		}
		return res, nil
	}
	pipes.started()
	var fed chan error
	if r.feed != nil {
		fed = make(chan error, 1)
		go func() { fed <- r.feed.run(tctx) }()
	}
	waitErr := cmd.Wait()
	// Whatever the command left running in its group goes with it, and
	// with it the last holders of stdout and stderr.
	killGroup(cmd.Process.Pid)
	pipes.finish(ioDrainTimeout)
	var feedErr error
	if fed != nil {
		r.feed.stop()
		feedErr = <-fed
	}

	if waitErr != nil && ctx.Err() != nil {
		// attachd gave up on this call (its own timeout, or shutdown):
		// not the command's fault, so the delivery is retried.
		return sdk.Result{}, fmt.Errorf("exec: %s: %w", r.ev.EventID, context.Cause(ctx))
	}
	timedOut := waitErr != nil && tctx.Err() != nil
	res := r.result(waitErr, timedOut, stderr)
	if feedErr != nil && res.Outcome == sdk.OK {
		res = sdk.Result{Outcome: sdk.Retry, Message: fmt.Sprintf("command exited 0, but its content pipe was cut short: %v", feedErr)}
	}
	if res.Outcome == sdk.OK {
		res.Annotations, res.Message = stdout.result()
	}
	return res, nil
}

// result maps the command's end to an outcome.
func (r *run) result(waitErr error, timedOut bool, stderr *tailWriter) sdk.Result {
	tail := stderr.lines()
	with := func(msg string) string {
		if tail != "" {
			msg += "; stderr:\n" + tail
		}
		return msg
	}
	if timedOut {
		return sdk.Result{Outcome: sdk.Fail, Message: with(fmt.Sprintf("command killed after timeout %v", r.s.timeout))}
	}
	var ee *exec.ExitError
	switch {
	case waitErr == nil:
		return sdk.Result{Outcome: sdk.OK}
	case errors.As(waitErr, &ee):
		if ee.ExitCode() == exTempFail {
			return sdk.Result{Outcome: sdk.Retry, Message: with("command exited with status 75 (EX_TEMPFAIL)")}
		}
		return sdk.Result{Outcome: sdk.Fail, Message: with("command failed: " + ee.ProcessState.String())}
	default:
		return sdk.Result{Outcome: sdk.Fail, Message: with(fmt.Sprintf("command: %v", waitErr))}
	}
}
