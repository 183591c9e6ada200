package host

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hclogger lets go-plugin, which speaks hclog, log through attachd's slog
// logger: plugin stderr lines arrive here at their own level.
type hclogger struct {
	l    *slog.Logger
	name string
	args []any
}

func newHCLogger(l *slog.Logger, name string) hclog.Logger {
	return &hclogger{l: l.With("plugin", name), name: name}
}

var toSlog = map[hclog.Level]slog.Level{
	hclog.Trace: slog.LevelDebug - 4,
	hclog.Debug: slog.LevelDebug,
	hclog.Info:  slog.LevelInfo,
	hclog.Warn:  slog.LevelWarn,
	hclog.Error: slog.LevelError,
}

var hclogKeys = map[string]string{"plugin": "file", "id": "pid", "error": "err"}

func (h *hclogger) Log(level hclog.Level, msg string, args ...any) {
	lv, ok := toSlog[level]
	if !ok {
		lv = slog.LevelInfo
	}
	// go-plugin's keys, renamed to attachd's so that each keeps one meaning
	// across the logs: it passes the executable's path as "plugin" (which
	// holds the plugin's name here), the process id as "id", errors as "error".
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok {
			if r, ok := hclogKeys[k]; ok {
				args[i] = r
			}
		}
	}
	h.l.Log(context.Background(), lv, msg, args...)
}

func (h *hclogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hclogger) enabled(l hclog.Level) bool {
	return h.l.Enabled(context.Background(), toSlog[l])
}

func (h *hclogger) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hclogger) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hclogger) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hclogger) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hclogger) IsError() bool { return h.enabled(hclog.Error) }

func (h *hclogger) ImpliedArgs() []any { return h.args }

func (h *hclogger) With(args ...any) hclog.Logger {
	return &hclogger{l: h.l.With(args...), name: h.name, args: append(append([]any{}, h.args...), args...)}
}

func (h *hclogger) Name() string { return h.name }

// Named keeps the plugin's name: go-plugin names sub-loggers after the
// executable path and "stdio", which adds nothing to the plugin attribute.
func (h *hclogger) Named(string) hclog.Logger      { return h }
func (h *hclogger) ResetNamed(string) hclog.Logger { return h }

func (h *hclogger) SetLevel(hclog.Level) {}

// GetLevel reports the most verbose level slog would print, so that
// go-plugin drops plugin lines attachd would not log anyway.
func (h *hclogger) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn} {
		if h.enabled(l) {
			return l
		}
	}
	return hclog.Error
}

func (h *hclogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(h.l.Handler(), slog.LevelInfo)
}

func (h *hclogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return h.StandardLogger(opts).Writer()
}
