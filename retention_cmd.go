package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/server/config"
	"github.com/attachd/attachd/server/hooks"
	"github.com/attachd/attachd/server/retention"
	"github.com/attachd/attachd/server/store"
)

// retentionCommand is `attachd retention`: what the [[retention]] rules
// would delete now (plan), and deleting it (run). See docs/retention.md.
func retentionCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML configuration `FILE` (the rules, data_dir)"},
		&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "the data `DIR` (default: the configuration's data_dir)"},
	}
	return &cli.Command{
		Name:  "retention",
		Usage: "show or apply the [[retention]] rules",
		Subcommands: []*cli.Command{
			{
				Name:  "plan",
				Usage: "show, per rule, what would be deleted now (a dry run)",
				Description: "Reads the index, beside a running server too, and prints per rule the objects\n" +
					"that have expired, their bytes, and the oldest and newest key that would go;\n" +
					"then the expired objects that a [[hold]] keeps.",
				Flags:  flags,
				Action: noArgs(retentionPlan),
			},
			{
				Name:  "run",
				Usage: "delete what the rules say has expired",
				Description: "Deletes through the store, so every delete queues its attachment.deleted hook\n" +
					"events (\"reason\": \"retention\"). Stop the server first: the data directory is\n" +
					"locked while it runs; a running server's own sweeper does the same work.\n" +
					"--rate limits the deletes per second (default: none).",
				Flags:  append(flags, &cli.Float64Flag{Name: "rate", Usage: "at most `N` deletes per second (0: no limit)"}),
				Action: noArgs(retentionRun),
			},
		},
	}
}

func retentionPolicy(c *cli.Context) (config.Config, *retention.Policy, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return cfg, nil, err
	}
	if len(cfg.Retention) == 0 {
		return cfg, nil, errors.New("no [[retention]] rules in the configuration: nothing expires (see docs/retention.md)")
	}
	p, err := retention.NewPolicy(cfg.Retention, cfg.Hold)
	return cfg, p, err
}

func retentionPlan(c *cli.Context) error {
	cfg, p, err := retentionPolicy(c)
	if err != nil {
		return err
	}
	ob, err := store.OpenOutbox(cfg.DataDir, cfg.Index.URL)
	if err != nil {
		return err
	}
	defer ob.Close()
	rep, err := p.Plan(c.Context, ob, time.Now(), nil)
	if err != nil {
		return err
	}
	printReport(c.App.Writer, p, rep, "WOULD DELETE")
	return nil
}

func retentionRun(c *cli.Context) error {
	cfg, p, err := retentionPolicy(c)
	if err != nil {
		return err
	}
	if cfg.Index.URL != "" {
		return errors.New("a cluster ([index] url) applies its rules with the sweeper of its running nodes; " +
			"`attachd retention run` works on a single node's data directory")
	}
	log := newLogger(cfg.Log, c.App.ErrWriter)
	// The server's quotas, so that the index keeps their folders' usage
	// rows through the run rather than dropping them for the next start to
	// sum again.
	opts := store.Options{Logger: log, Quotas: cfg.StoreQuotas()}
	for _, h := range cfg.Hooks {
		opts.Sinks = append(opts.Sinks, hooks.Sink(h)) // the deletes' events wait for the server's hooks
	}
	if name := cfg.Storage.Backend; cfg.Storage.Remote() {
		m, err := host.New(host.Config{Dir: cfg.Plugins.Dir, Plugins: map[string]host.Plugin{name: host.Plugin(cfg.Plugin[name])}, Logger: log})
		if err != nil {
			return err
		}
		defer m.Close()
		if opts.Remote, err = m.Backend(name); err != nil {
			return err
		}
		opts.Through = cfg.Storage.WriteMode == store.WriteThrough
		opts.ReadCache = int64(cfg.Storage.ReadCache) // so that a delete removes this node's copy too
	}
	// Open flocks the data directory: it refuses while a server holds it.
	st, err := store.Open(cfg.DataDir, opts)
	if err != nil {
		return err
	}
	rep, err := p.Run(c.Context, st, time.Now, c.Float64("rate"), log)
	err = errors.Join(err, st.Close())
	printReport(c.App.Writer, p, rep, "DELETED")
	if rep.Errors > 0 {
		err = errors.Join(err, fmt.Errorf("%d deletes failed (see the log)", rep.Errors))
	}
	return err
}

func printReport(w io.Writer, p *retention.Policy, rep retention.Report, verb string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "RULE\tPREFIX\tMATCH\tMAX AGE\t%s\tBYTES\tOLDEST\tNEWEST\n", verb)
	for i, r := range p.Rules {
		s := rep.Rules[i]
		var match []string
		if r.Match.DocType != "" {
			match = append(match, "doc_type="+r.Match.DocType)
		}
		if r.Match.ContentType != "" {
			match = append(match, "content_type="+r.Match.ContentType)
		}
		oldest, newest := "-", "-"
		if s.Count > 0 {
			oldest = store.UnescapeKey(s.Oldest) + " (" + s.OldestAt.UTC().Format("2006-01-02") + ")"
			newest = store.UnescapeKey(s.Newest) + " (" + s.NewestAt.UTC().Format("2006-01-02") + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", i+1, r.Prefix, orDash(strings.Join(match, ",")), r.MaxAge,
			s.Count, s.Bytes, oldest, newest)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d objects looked at; %d expired but kept by a hold (%d bytes)\n", rep.Scanned, rep.Held, rep.HeldBytes)
	for _, h := range p.Holds {
		fmt.Fprintf(w, "hold %s%s\n", h.Prefix, map[bool]string{true: "", false: ": " + h.Note}[h.Note == ""])
	}
}
