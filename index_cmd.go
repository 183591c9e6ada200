package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/attachd/attachd/server/store"
)

// indexCommand is `attachd index`: the index of a data directory as a whole.
func indexCommand() *cli.Command {
	return &cli.Command{
		Name:  "index",
		Usage: "move the index of a data directory",
		Subcommands: []*cli.Command{
			{
				Name:  "copy",
				Usage: "copy a data directory's SQLite index into PostgreSQL, for moving the node to a cluster",
				Description: "Copies folders, objects, live WebDAV locks and hook and replication deliveries\n" +
					"(pending and dead) from DIR/index.db into the PostgreSQL index at URL, which must\n" +
					"be empty. Stop attachd first: the data directory is locked while the copy runs.\n" +
					"An interrupted copy continues where it stopped when run again (progress is kept\n" +
					"in DIR/index-copy.json). See docs/cluster.md, \"Moving a single node to a cluster\".",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "to", Usage: "the PostgreSQL `URL` (default: the configuration's [index] url)"},
					&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML configuration `FILE` (for data_dir)"},
					&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "the data `DIR` (default: the configuration's data_dir)"},
					&cli.StringFlag{Name: "node-url", Usage: "this node's [cluster] advertise_url in the cluster, `URL`: its spool's " +
						"replication queue is renamed to that node's (default: the configuration's advertise_url)"},
					&cli.IntFlag{Name: "batch", Value: 1000, Usage: "objects per PostgreSQL transaction", Hidden: true},
				},
				Action: noArgs(indexCopy),
			},
		},
	}
}

// clusterNode is the name of the node whose advertise_url is u, as the
// server gives it (server/cluster.go, nodeName): its replication sink is
// "replicate@" and this.
func clusterNode(u string) string {
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:8])
}

func indexCopy(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	to := c.String("to")
	if to == "" {
		to = cfg.Index.URL
	}
	if to == "" {
		return errors.New("index copy: no target: pass --to postgres://USER:PASSWORD@HOST:PORT/DATABASE")
	}
	nodeURL := cfg.Cluster.AdvertiseURL
	if c.IsSet("node-url") {
		nodeURL = c.String("node-url")
	}
	opts := store.CopyOptions{Batch: c.Int("batch")}
	if nodeURL != "" {
		if u, err := url.Parse(nodeURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--node-url: want the node's [cluster] advertise_url, e.g. \"http://10.0.0.5:37635\", got %q", nodeURL)
		}
		opts.Node = clusterNode(nodeURL)
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	out := c.App.Writer
	target := store.RedactIndexURL(to)
	fmt.Fprintf(out, "copying the index of %s into %s\n", cfg.DataDir, target)
	bar := &copyBar{w: out, tty: isTerminal(out), start: time.Now()}
	opts.Progress = bar.update
	res, err := store.CopyIndex(ctx, cfg.DataDir, to, opts)
	bar.end()
	if err != nil {
		return err
	}
	how := "copied"
	if res.Resumed {
		how = "finished an interrupted copy:"
	}
	fmt.Fprintf(out, "%s %d objects, %d folders, %d locks, %d deliveries into %s in %s\n", how,
		res.Objects, res.Folders, res.Locks, res.Deliveries, target, time.Since(bar.start).Round(time.Millisecond))
	if res.Replicating > 0 {
		fmt.Fprintf(out, "note: %d objects are still in this node's spool, not yet in the backend; their replication "+
			"is now sink %s, the node with advertise_url %s: run this node in the cluster with the same data_dir "+
			"and that advertise_url, so that it moves them on\n", res.Replicating, res.RenamedTo, nodeURL)
	}
	return nil
}

// isTerminal reports whether w is a terminal, where progress is drawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// copyBar shows a copy's progress: on a terminal, one line redrawn in place
// (a bar, the count, the rate and the time left); elsewhere a line every 2 s
// or every 10 000 items.
type copyBar struct {
	w     io.Writer
	tty   bool
	start time.Time

	phase      string
	phaseStart time.Time
	phaseFrom  int64 // copied in the phase when this run began it
	bytesFrom  int64 // bytes copied when this run began the phase
	bytes      int64 // bytes copied, of totalBytes (attachd migrate; 0 for index copy)
	totalBytes int64
	last       time.Time
	lastN      int64
	drawn      bool // a line is drawn and not ended
}

const (
	barWidth     = 30
	logEvery     = 2 * time.Second
	logEveryN    = 10000
	redrawEvery  = 100 * time.Millisecond
	barClearLine = "\r\x1b[K"
)

// phaseCounts returns what the phase has copied of how many, and what it copies.
func phaseCounts(p store.CopyProgress) (done, total int64, what string) {
	switch p.Phase {
	case "folders":
		return p.Done.Folders, p.Total.Folders, "folders"
	case "locks":
		return p.Done.Locks, p.Total.Locks, "locks"
	case "deliveries":
		return p.Done.Deliveries, p.Total.Deliveries, "deliveries"
	}
	return p.Done.Objects, p.Total.Objects, "objects"
}

func (b *copyBar) update(p store.CopyProgress) { b.show(p, time.Now()) }

func (b *copyBar) show(p store.CopyProgress, now time.Time) {
	if p.Phase == "done" {
		return
	}
	done, total, what := phaseCounts(p)
	if p.Phase != b.phase {
		if b.drawn {
			fmt.Fprintln(b.w)
			b.drawn = false
		}
		b.phase, b.phaseStart, b.phaseFrom, b.last, b.lastN = p.Phase, now, done, time.Time{}, 0
		b.bytesFrom = p.Done.Bytes
	}
	b.bytes, b.totalBytes = p.Done.Bytes, p.Total.Bytes
	if b.tty {
		if now.Sub(b.last) < redrawEvery && done < total {
			return
		}
		b.last = now
		fmt.Fprint(b.w, barClearLine+b.line(done, total, what, now))
		b.drawn = true
		return
	}
	if !b.last.IsZero() && now.Sub(b.last) < logEvery && done/logEveryN == b.lastN/logEveryN && done < total {
		return
	}
	b.last, b.lastN = now, done
	fmt.Fprintf(b.w, "copied %d/%d %s (%d%%)%s\n", done, total, what, percent(done, total), b.byteInfo(now, ", "))
}

// byteInfo is the bytes copied, their rate and the time left, when the copy
// counts bytes (attachd migrate): the time left is then reckoned by bytes.
func (b *copyBar) byteInfo(now time.Time, sep string) string {
	if b.totalBytes <= 0 {
		return ""
	}
	s := fmt.Sprintf("%s%s/%s", sep, mib(b.bytes), mib(b.totalBytes))
	if el := now.Sub(b.phaseStart).Seconds(); el >= 0.5 && b.bytes > b.bytesFrom {
		rate := float64(b.bytes-b.bytesFrom) / el
		s += fmt.Sprintf("%s%s/s", sep, mib(int64(rate)))
		if left := b.totalBytes - b.bytes; left > 0 {
			s += sep + "ETA " + time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second).String()
		}
	}
	return s
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// line is the terminal's progress line.
func (b *copyBar) line(done, total int64, what string, now time.Time) string {
	filled := barWidth
	if total > 0 {
		filled = int(min(done, total) * barWidth / total)
	}
	bar := strings.Repeat("=", filled)
	if filled < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	s := fmt.Sprintf("[%s] %d/%d %s %3d%%", bar, done, total, what, percent(done, total))
	if b.totalBytes > 0 {
		return s + b.byteInfo(now, "  ")
	}
	if el := now.Sub(b.phaseStart).Seconds(); el >= 0.5 && done > b.phaseFrom {
		rate := float64(done-b.phaseFrom) / el
		s += fmt.Sprintf("  %.0f/s", rate)
		if left := total - done; left > 0 {
			s += "  ETA " + time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second).String()
		}
	}
	return s
}

// end ends the line drawn in place, if any.
func (b *copyBar) end() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

func percent(done, total int64) int64 {
	if total <= 0 {
		return 100
	}
	return min(done, total) * 100 / total
}
