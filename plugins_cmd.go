package main

import (
	"fmt"
	"log/slog"
	"os"
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
	logger := slog.New(slog.DiscardHandler)
	if c.Bool("verbose") {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	entries, err := host.Inventory(cfg.Plugins.Dir, server.HostPlugins(cfg.Plugin), logger)
	if err != nil {
		return err
	}
	bad := false
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFOUND\tPINNED\tRUNNING\tHEALTHY\tVERSION\tNOTE")
	for _, e := range entries {
		if _, configured := cfg.Plugin[e.Name]; configured && !e.OK() {
			bad = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Found, e.Pinned, e.Running, e.Healthy, orDash(e.Version), e.Note)
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
