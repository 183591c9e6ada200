// Package host runs attachd's plugins: it finds the executables in the
// plugins folder, checks each against its SHA-256 pin, starts it over
// go-plugin (gRPC, AutoMTLS, no inherited environment), configures it, and
// keeps it running with a supervisor. Storage plugins are exposed as
// blob.Backend and hook plugins as hook.Hook.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/attachd/attachd/plugins/blob"
	"github.com/attachd/attachd/plugins/hook"
	pb "github.com/attachd/attachd/plugins/proto"
)

// Plugin pins and configures one plugin: its [plugin.NAME] table.
type Plugin struct {
	SHA256  string         // hex SHA-256 the executable must have
	Config  map[string]any // handed to the plugin's Configure
	Secrets map[string]any // handed over the same way, never logged
}

// Config configures a Manager. Zero durations and counts take the defaults
// shown; only Dir and Plugins are needed.
type Config struct {
	Dir     string            // [plugins] dir
	Plugins map[string]Plugin // the plugins to run: those named by [storage] backend and hooks
	Logger  *slog.Logger      // default slog.Default()
	// Content serves object bytes to hook plugins (sdk.Content); nil: none.
	Content hook.ContentOpener

	ChunkSize int // proposed to plugins; 256 KiB
	// StreamOnly passes plugins no descriptors, so every byte moves as gRPC
	// chunks, as with a plugin that does not take them: for measuring the
	// difference (bench/plugins.sh) and for ruling it out when debugging.
	StreamOnly     bool
	StartTimeout   time.Duration // handshake, Describe and Configure; 15 s
	KillTimeout    time.Duration // for a plugin to stop on shutdown; 30 s
	HealthInterval time.Duration // between health checks; 30 s
	Backoff        time.Duration // first restart delay, doubled per crash; 1 s
	MaxBackoff     time.Duration // 2 min
	HealthyReset   time.Duration // up this long, a crash restarts from Backoff again; 5 min
	MaxCrashes     int           // crashes within CrashWindow that disable a plugin; 10
	CrashWindow    time.Duration // 10 min
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = pb.DefaultChunkSize
	}
	c.ChunkSize = min(c.ChunkSize, pb.MaxChunkSize)
	def(&c.StartTimeout, 15*time.Second)
	def(&c.KillTimeout, 30*time.Second)
	def(&c.HealthInterval, 30*time.Second)
	def(&c.Backoff, time.Second)
	def(&c.MaxBackoff, 2*time.Minute)
	def(&c.HealthyReset, 5*time.Minute)
	def(&c.CrashWindow, 10*time.Minute)
	if c.MaxCrashes <= 0 {
		c.MaxCrashes = 10
	}
}

// Manager runs a set of plugins.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	sups map[string]*supervisor

	closeOnce sync.Once
}

// New starts every plugin in cfg.Plugins and waits until each is ready. If
// any fails to start (missing file, hash mismatch, crash, refused config),
// New stops the others and returns an error naming the plugin and the fix.
// With no plugins, New returns an empty Manager and needs no Dir.
func New(cfg Config) (*Manager, error) {
	cfg.setDefaults()
	m := &Manager{cfg: cfg, log: cfg.Logger, sups: map[string]*supervisor{}}
	if len(cfg.Plugins) == 0 {
		return m, nil
	}
	if cfg.Dir == "" {
		return nil, errors.New("plugins: [plugins] dir must be set to run plugins")
	}
	errs := m.startAll()
	if len(errs) > 0 {
		m.Close()
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// startAll starts the plugins in parallel and returns their start errors.
func (m *Manager) startAll() []error {
	names := make([]string, 0, len(m.cfg.Plugins))
	for name := range m.cfg.Plugins {
		names = append(names, name)
	}
	sort.Strings(names)
	firsts := make([]chan error, len(names))
	for i, name := range names {
		s := newSupervisor(m, name, m.cfg.Plugins[name])
		m.sups[name] = s
		firsts[i] = make(chan error, 1)
		go s.run(firsts[i])
	}
	var errs []error
	for _, ch := range firsts {
		if err := <-ch; err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Probe starts each plugin in cfg.Plugins once, reports its status, and
// stops it: what `attachd plugins list` shows. It never fails as a whole;
// each plugin's LastError says what went wrong with it.
func Probe(cfg Config) []PluginStatus {
	cfg.setDefaults()
	cfg.MaxCrashes = 1
	m := &Manager{cfg: cfg, log: cfg.Logger, sups: map[string]*supervisor{}}
	if cfg.Dir != "" {
		m.startAll()
	}
	st := m.Status()
	for i := range st {
		if s := m.sups[st[i].Name]; s != nil && st[i].State == Ready {
			if inst, err := s.current(); err == nil {
				if err := ping(inst); err != nil {
					st[i].LastError = "health check: " + err.Error()
				}
			}
		}
	}
	m.Close()
	return st
}

// Status reports every plugin's state, sorted by name.
func (m *Manager) Status() []PluginStatus {
	out := make([]PluginStatus, 0, len(m.sups))
	for _, s := range m.sups {
		out = append(out, s.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Backend returns the storage plugin name as a blob.Backend. The Backend
// survives restarts of the plugin; while the plugin is down its calls fail
// with ErrUnavailable.
func (m *Manager) Backend(name string) (blob.Backend, error) {
	s, err := m.kind(name, pb.Kind_KIND_STORAGE)
	if err != nil {
		return nil, err
	}
	return &backend{s: s}, nil
}

// Hook returns the hook plugin name as a hook.Hook; like Backend, it
// survives restarts of the plugin.
func (m *Manager) Hook(name string) (hook.Hook, error) {
	s, err := m.kind(name, pb.Kind_KIND_HOOK)
	if err != nil {
		return nil, err
	}
	return &hookClient{s: s}, nil
}

func (m *Manager) kind(name string, k pb.Kind) (*supervisor, error) {
	s, ok := m.sups[name]
	if !ok {
		return nil, fmt.Errorf("plugin %s: not configured (no [plugin.%s] table)", name, name)
	}
	kinds := s.status().Kinds
	if want := kindNames([]pb.Kind{k})[0]; !slices.Contains(kinds, want) {
		return nil, fmt.Errorf("plugin %s: is a %v plugin, not a %s plugin", name, kinds, want)
	}
	return s, nil
}

// Close stops every plugin, each within KillTimeout, and returns when all
// are gone. It is safe to call more than once.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		for _, s := range m.sups {
			close(s.stop)
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.KillTimeout+5*time.Second)
		defer cancel()
		for _, s := range m.sups {
			select {
			case <-s.finished:
			case <-ctx.Done():
				m.log.Error("plugin supervisor did not stop", "plugin", s.name)
			}
		}
	})
	return nil
}

func kindNames(ks []pb.Kind) []string {
	var out []string
	for _, k := range ks {
		switch k {
		case pb.Kind_KIND_STORAGE:
			out = append(out, "storage")
		case pb.Kind_KIND_HOOK:
			out = append(out, "hook")
		default:
			out = append(out, k.String())
		}
	}
	return out
}
