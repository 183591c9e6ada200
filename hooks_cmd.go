package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/attachd/attachd/server/hooks"
	"github.com/attachd/attachd/server/store"
)

// hooksCommand is `attachd hooks`: the delivery queues of a data directory.
// It reads the index beside a running server (SQLite lets two processes
// share it), so it needs no API of the server's.
func hooksCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML configuration `FILE` (for data_dir)"},
		&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "the data `DIR` (default: the configuration's data_dir)"},
	}
	return &cli.Command{
		Name:  "hooks",
		Usage: "inspect and repair post-save hook deliveries",
		Subcommands: []*cli.Command{
			{
				Name:   "status",
				Usage:  "show queue depth, oldest pending delivery and dead letters per hook",
				Flags:  flags,
				Action: noArgs(hooksStatus),
			},
			{
				Name:  "retry",
				Usage: "queue dead letters for delivery again",
				Description: "Makes dead letters pending again with their attempts reset; a running server\n" +
					"delivers them within a second. Without --hook or --event, every dead letter.",
				Flags: append(flags,
					&cli.StringFlag{Name: "hook", Usage: "only dead letters of hook `NAME`"},
					&cli.StringFlag{Name: "event", Usage: "only the event with this `ID`"},
				),
				Action: noArgs(hooksRetry),
			},
		},
	}
}

func openOutbox(c *cli.Context) (*store.Outbox, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	return store.OpenOutbox(cfg.DataDir, cfg.Index.URL)
}

func hooksStatus(c *cli.Context) error {
	ob, err := openOutbox(c)
	if err != nil {
		return err
	}
	defer ob.Close()
	stats, err := ob.Stats(c.Context)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOOK\tPENDING\tOLDEST PENDING\tDEAD LETTERS")
	for _, st := range stats {
		oldest := "-"
		if !st.OldestPending.IsZero() {
			oldest = time.Since(st.OldestPending).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", strings.TrimPrefix(st.Sink, "hook:"), st.Pending, oldest, st.Dead)
	}
	if len(stats) == 0 {
		fmt.Fprintln(tw, "(no deliveries queued)")
	}
	return tw.Flush()
}

func hooksRetry(c *cli.Context) error {
	ob, err := openOutbox(c)
	if err != nil {
		return err
	}
	defer ob.Close()
	sink := ""
	if h := c.String("hook"); h != "" {
		sink = hooks.Sink(h)
	}
	n, err := ob.Requeue(c.Context, sink, c.String("event"))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "queued %d dead letters again\n", n)
	return nil
}
