package host

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// State is where a plugin is in its life.
type State string

// States, in the order a plugin usually goes through them.
const (
	Starting State = "starting" // being started and configured
	Ready    State = "ready"    // serving calls
	Backoff  State = "backoff"  // crashed; waiting to be restarted
	Disabled State = "disabled" // given up on: bad pin or config, or too many crashes
	Stopped  State = "stopped"  // shut down by Close
)

// ErrUnavailable is returned (wrapped) by the Backend and Hook of a plugin
// that is not ready, or whose remote store cannot be reached. It is
// transient: attachd answers 503 and retries later.
var ErrUnavailable = errors.New("plugin unavailable")

// PluginStatus is a plugin's state, for /readyz, logs and `attachd plugins list`.
type PluginStatus struct {
	Name      string
	Path      string
	Version   string   // as the plugin describes itself
	Kinds     []string // "storage", "hook"
	State     State
	PID       int
	Restarts  int
	Since     time.Time // when State was entered
	LastError string    // the last start failure or crash, "" if none
	// FdPassing: the running plugin takes bytes through passed file
	// descriptors rather than gRPC chunks.
	FdPassing bool
}

// supervisor runs one plugin: starts it, watches it, restarts it with
// exponential backoff after a crash, and disables it after repeated crashes.
type supervisor struct {
	m    *Manager
	name string
	pin  Plugin

	mu       sync.Mutex
	st       PluginStatus
	inst     *instance
	kick     chan struct{} // a call failed as if the plugin were down: check now
	stop     chan struct{}
	finished chan struct{}
}

func newSupervisor(m *Manager, name string, pin Plugin) *supervisor {
	return &supervisor{
		m: m, name: name, pin: pin,
		st:       PluginStatus{Name: name, State: Starting, Since: time.Now()},
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		finished: make(chan struct{}),
	}
}

func (s *supervisor) status() PluginStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Kinds = append([]string(nil), st.Kinds...)
	return st
}

func (s *supervisor) set(state State, inst *instance, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inst = inst
	if s.st.State != state {
		s.st.State, s.st.Since = state, time.Now()
	}
	s.st.PID = 0
	s.st.FdPassing = false
	if inst != nil {
		s.st.FdPassing = inst.fdPassing
		s.st.PID = inst.pid
		s.st.Version = inst.info.Version
		s.st.Kinds = kindNames(inst.info.Kinds)
		s.st.Path, _ = Locate(s.m.cfg.Dir, s.name)
	}
	if err != nil {
		s.st.LastError = err.Error()
	}
}

// current returns the running instance, or an error saying why there is none.
func (s *supervisor) current() (*instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inst != nil {
		return s.inst, nil
	}
	if s.st.LastError != "" {
		return nil, fmt.Errorf("%w: %s is %s (last error: %s)", ErrUnavailable, s.name, s.st.State, s.st.LastError)
	}
	return nil, fmt.Errorf("%w: %s is %s", ErrUnavailable, s.name, s.st.State)
}

// check asks the supervisor to make sure the plugin is alive.
func (s *supervisor) check() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run is the supervisor's goroutine; it reports the first start's outcome
// on first. It stays locked to its OS thread, from which every plugin
// process is forked, because Pdeathsig follows the forking thread
// (golang/go#27505): were the runtime to retire that thread, the plugin
// would be killed under us.
func (s *supervisor) run(first chan<- error) {
	runtime.LockOSThread()
	defer close(s.finished)
	cfg := &s.m.cfg
	delay := cfg.Backoff
	var crashes []time.Time
	for {
		s.set(Starting, nil, nil)
		inst, err := s.start()
		if err == nil {
			s.set(Ready, inst, nil)
			s.m.log.Info("plugin ready", "plugin", s.name, "version", inst.info.Version, "pid", inst.pid)
		}
		if first != nil {
			// A plugin that cannot start even once is a deployment
			// error: New reports it instead of retrying.
			if err != nil {
				s.set(Disabled, nil, err)
			}
			first <- err
			first = nil
			if err != nil {
				return
			}
		}
		var pe *permanentError
		if errors.As(err, &pe) {
			s.m.log.Error("plugin disabled", "plugin", s.name, "err", err)
			s.set(Disabled, nil, err)
			return
		}
		if err == nil {
			readyAt := time.Now()
			err = s.watch(inst)
			s.set(Starting, nil, err)
			s.kill(inst)
			if err == nil { // Close
				s.set(Stopped, nil, nil)
				return
			}
			// A plugin that ran well for a while starts again from the
			// shortest delay: this crash is not part of a crash loop.
			if time.Since(readyAt) > cfg.HealthyReset {
				delay = cfg.Backoff
			}
		}
		now := time.Now()
		crashes = append(crashes, now)
		for len(crashes) > 0 && now.Sub(crashes[0]) > cfg.CrashWindow {
			crashes = crashes[1:]
		}
		s.mu.Lock()
		s.st.Restarts++
		s.mu.Unlock()
		if len(crashes) >= cfg.MaxCrashes {
			err = fmt.Errorf("plugin %s: disabled after %d crashes in %s; last: %w", s.name, len(crashes), cfg.CrashWindow, err)
			s.m.log.Error("plugin disabled", "plugin", s.name, "err", err)
			s.set(Disabled, nil, err)
			return
		}
		s.set(Backoff, nil, err)
		s.m.log.Warn("plugin crashed; restarting", "plugin", s.name, "err", err, "retry_in_ms", delay.Milliseconds())
		select {
		case <-time.After(delay):
		case <-s.stop:
			s.set(Stopped, nil, nil)
			return
		}
		delay = min(2*delay, cfg.MaxBackoff)
	}
}

// watch waits until the plugin exits, fails a health check (an error), or
// the supervisor is stopped (nil).
func (s *supervisor) watch(inst *instance) error {
	exited := time.NewTicker(250 * time.Millisecond)
	defer exited.Stop()
	health := time.NewTicker(s.m.cfg.HealthInterval)
	defer health.Stop()
	for {
		select {
		case <-s.stop:
			return nil
		case <-exited.C:
			if inst.client.Exited() {
				return fmt.Errorf("plugin %s: process %d exited", s.name, inst.pid)
			}
			continue
		case <-health.C:
		case <-s.kick:
		}
		if err := ping(inst); err != nil {
			if inst.client.Exited() {
				return fmt.Errorf("plugin %s: process %d exited", s.name, inst.pid)
			}
			return fmt.Errorf("plugin %s: health check: %w", s.name, err)
		}
	}
}

// ping checks the plugin's gRPC health service, as go-plugin's Ping does,
// but under a deadline: its Ping takes no context, and a goroutine waiting
// on a hung plugin would outlive the check.
func ping(inst *instance) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := inst.health.Check(ctx, &healthpb.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return err
}
