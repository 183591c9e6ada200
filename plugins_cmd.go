package main

import (
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/server"
	"github.com/attachd/attachd/server/config"
)

// pluginsCommand is `attachd plugins`: list the plugins folder against the
// configuration, and hash a plugin file for its pin.
func pluginsCommand() *cli.Command {
	return &cli.Command{
		Name:  "plugins",
		Usage: "inspect plugin executables",
		Description: "Plugins are executables named attachd-plugin-<name> in [plugins] dir, each enabled by a\n" +
			"[plugin.<name>] table whose sha256 pins the file. See docs/plugins.md.",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "show each plugin: found, pinned, running and healthy",
				Description: "Starts each configured plugin once, as `attachd serve` would, checks its health and\n" +
					"stops it. Exits 1 if a configured plugin is missing, unpinned or unhealthy.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML configuration `FILE` (see config.example.toml)"},
					&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show the plugins' log lines on stderr"},
				},
				Action: noArgs(pluginsList),
			},
			{
				Name:      "hash",
				Usage:     "print the SHA-256 of a plugin file, for [plugin.<name>] sha256",
				ArgsUsage: "FILE",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return fmt.Errorf("plugins hash: want one FILE, got %d arguments", c.NArg())
					}
					sum, err := host.HashFile(c.Args().First())
					if err != nil {
						return err
					}
					_, err = fmt.Fprintln(c.App.Writer, sum)
					return err
				},
			},
		},
	}
}

func pluginsList(c *cli.Context) error {
	cfg := config.Default()
	if p := c.String("config"); p != "" {
		var err error
		if cfg, err = config.Load(p); err != nil {
			return err
		}
	}
	if cfg.Plugins.Dir == "" {
		fmt.Fprintln(c.App.Writer, "plugins are off: set [plugins] dir in the configuration")
		return nil
	}
	found, err := host.Discover(cfg.Plugins.Dir)
	if err != nil {
		return err
	}
	logger := slog.New(slog.DiscardHandler)
	if c.Bool("verbose") {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	statuses := map[string]host.PluginStatus{}
	for _, st := range host.Probe(host.Config{Dir: cfg.Plugins.Dir, Plugins: server.HostPlugins(cfg.Plugin), Logger: logger}) {
		statuses[st.Name] = st
	}

	type row struct {
		name, found, pinned, running, healthy, version, note string
	}
	rows := map[string]*row{}
	for _, f := range found {
		r := &row{name: f.Name, found: "yes", pinned: "no", running: "-", healthy: "-", note: "not enabled: no [plugin." + f.Name + "] table"}
		if f.Err != nil {
			r.found, r.note = "unusable", f.Err.Error()
		}
		rows[f.Name] = r
	}
	bad := false
	for name, pin := range cfg.Plugin {
		r := rows[name]
		if r == nil {
			r = &row{name: name, found: "no", pinned: "-", running: "-", healthy: "-"}
			rows[name] = r
		}
		st := statuses[name]
		r.note, r.version = st.LastError, st.Version
		if r.found == "yes" {
			r.pinned = "yes"
			if p, err := host.Locate(cfg.Plugins.Dir, name); err == nil {
				if sum, err := host.HashFile(p); err == nil && !strings.EqualFold(sum, pin.SHA256) {
					r.pinned = "MISMATCH"
				}
			}
		}
		r.running, r.healthy = "no", "no"
		if st.State == host.Ready {
			r.running = "yes"
			if st.LastError == "" {
				r.healthy = "yes"
			}
		}
		if r.healthy != "yes" {
			bad = true
		}
	}

	names := make([]string, 0, len(rows))
	for n := range rows {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFOUND\tPINNED\tRUNNING\tHEALTHY\tVERSION\tNOTE")
	for _, n := range names {
		r := rows[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.found, r.pinned, r.running, r.healthy, orDash(r.version), r.note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if bad {
		return cli.Exit("", 1)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
