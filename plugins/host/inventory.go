package host

import (
	"log/slog"
	"sort"
	"strings"
)

// Entry is one line of the plugins folder's inventory: a plugin found in
// the folder, configured in [plugin.NAME], or both.
type Entry struct {
	Name    string
	Found   string // "yes", "no" or "unusable"
	Pinned  string // "yes", "no", "MISMATCH" or "-"
	Running string // "yes", "no" or "-"
	Healthy string // "yes", "no" or "-"
	Version string
	Note    string
}

// OK reports whether a configured plugin is found, pinned, running and healthy.
func (e Entry) OK() bool { return e.Healthy == "yes" }

// Inventory compares the plugins folder dir with the configured plugins:
// each found executable, whether its pin matches, and whether it starts and
// answers (each configured plugin is started once and stopped). Entries come
// in name order.
func Inventory(dir string, plugins map[string]Plugin, log *slog.Logger) ([]Entry, error) {
	found, err := Discover(dir)
	if err != nil {
		return nil, err
	}
	statuses := map[string]PluginStatus{}
	for _, st := range Probe(Config{Dir: dir, Plugins: plugins, Logger: log}) {
		statuses[st.Name] = st
	}
	entries := map[string]*Entry{}
	for _, f := range found {
		e := &Entry{Name: f.Name, Found: "yes", Pinned: "no", Running: "-", Healthy: "-",
			Note: "not enabled: no [plugin." + f.Name + "] table"}
		if f.Err != nil {
			e.Found, e.Note = "unusable", f.Err.Error()
		}
		entries[f.Name] = e
	}
	for name, pin := range plugins {
		e := entries[name]
		if e == nil {
			e = &Entry{Name: name, Found: "no", Pinned: "-"}
			entries[name] = e
		}
		st := statuses[name]
		e.Note, e.Version = st.LastError, st.Version
		if e.Found == "yes" {
			e.Pinned = "yes"
			if p, err := Locate(dir, name); err == nil {
				if sum, err := HashFile(p); err == nil && !strings.EqualFold(sum, pin.SHA256) {
					e.Pinned = "MISMATCH"
				}
			}
		}
		e.Running, e.Healthy = "no", "no"
		if st.State == Ready {
			e.Running = "yes"
			if st.LastError == "" {
				e.Healthy = "yes"
			}
		}
	}
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
