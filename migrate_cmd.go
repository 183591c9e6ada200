package main

import (
	"errors"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/server/store"
)

// migrateCommand is `attachd migrate`: every object into another backend.
func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "copy every object into another storage backend, before switching [storage] backend to it",
		Description: "Copies the bytes of every object in the index from the current backend (\"local\": the\n" +
			"data directory) into NAME, a [plugin.NAME] storage plugin or \"local\", checking each\n" +
			"object's SHA-256 as it streams; into a plugin it writes each object's sidecar too, so\n" +
			"that NAME alone can rebuild the index (attachd reindex). It may run while attachd serves.\n" +
			"A killed run continues where it stopped (DIR/migrate.json); a new run skips what NAME\n" +
			"holds already. To switch: migrate while serving, stop attachd, migrate again (quick),\n" +
			"set [storage] backend = NAME, start. See docs/migrate.md.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "to", Required: true, Usage: "the target backend `NAME`: a [plugin.NAME] storage plugin, or \"local\""},
			&cli.StringFlag{Name: "from", Usage: "the backend `NAME` the bytes are in (default: the configuration's [storage] backend)"},
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML configuration `FILE` (see config.example.toml)"},
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "the data `DIR` (default: the configuration's data_dir)"},
			&cli.IntFlag{Name: "workers", Value: 4, Usage: "objects copied at once"},
			&cli.BoolFlag{Name: "prune", Usage: "once all is copied, delete from NAME the sidecars (and blobs) of objects " +
				"deleted since an earlier run copied them; attachd must be stopped, and NAME not shared with another data directory"},
		},
		Action: noArgs(migrate),
	}
}

func migrate(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	from, to := cfg.Storage.Backend, c.String("to")
	if c.IsSet("from") {
		from = c.String("from")
	}
	if from == to {
		return fmt.Errorf("migrate: the bytes are in %q already (--from, or [storage] backend): name another backend with --to", to)
	}
	log := newLogger(cfg.Log, c.App.ErrWriter)
	used := map[string]host.Plugin{}
	for _, name := range []string{from, to} {
		if name == store.LocalBackend {
			continue
		}
		p, ok := cfg.Plugin[name]
		if !ok {
			return fmt.Errorf("migrate: no [plugin.%s] table: configure the storage plugin %q (its sha256 and config) first", name, name)
		}
		if cfg.Plugins.Dir == "" {
			return errors.New("migrate: [plugins] dir must be set to use a storage plugin")
		}
		used[name] = host.Plugin(p)
	}
	opts := store.MigrateOptions{IndexURL: cfg.Index.URL, From: from, To: to, Workers: c.Int("workers"), Prune: c.Bool("prune")}
	if len(used) > 0 {
		m, err := host.New(host.Config{Dir: cfg.Plugins.Dir, Plugins: used, Logger: log})
		if err != nil {
			return err
		}
		defer m.Close()
		if from != store.LocalBackend {
			if opts.Source, err = m.Backend(from); err != nil {
				return fmt.Errorf("source: %w", err)
			}
		}
		if to != store.LocalBackend {
			if opts.Target, err = m.Backend(to); err != nil {
				return fmt.Errorf("target: %w", err)
			}
		}
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	out := c.App.Writer
	fmt.Fprintf(out, "migrating the objects of %s from %s to %s\n", cfg.DataDir, describeBackend(from), describeBackend(to))
	bar := &copyBar{w: out, tty: isTerminal(out), start: time.Now()}
	opts.Progress = bar.update
	res, err := store.Migrate(ctx, cfg.DataDir, opts)
	bar.end()
	if err != nil {
		return err
	}
	how := "migrated"
	if res.Resumed {
		how = "finished an interrupted migration:"
	}
	fmt.Fprintf(out, "%s %d objects (%s) into %s in %s: %d copied and verified, %d there already, %d changed or deleted meanwhile\n",
		how, res.Objects, mib(res.Bytes), describeBackend(to), time.Since(bar.start).Round(time.Millisecond),
		res.Copied, res.Skipped, res.Vanished)
	switch {
	case res.Pruned > 0:
		fmt.Fprintf(out, "pruned %d objects deleted since they were copied\n", res.Pruned)
	case res.Orphans > 0:
		fmt.Fprintf(out, "note: %s holds %d objects the index does not (deleted since an earlier run copied them, or "+
			"another data directory's): with attachd stopped, run this command with --prune to delete them, unless "+
			"%s is shared with another data directory\n", describeBackend(to), res.Orphans, describeBackend(to))
	}
	if cfg.Storage.Backend != to {
		fmt.Fprintf(out, "next: stop attachd, run this command again (it copies only what changed), "+
			"then set [storage] backend = %q and start attachd (docs/migrate.md)\n", to)
	}
	return nil
}

func describeBackend(name string) string {
	if name == store.LocalBackend {
		return `"local" (the data directory)`
	}
	return fmt.Sprintf("%q", name)
}
