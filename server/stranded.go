package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attachd/attachd/server/store"
)

// Switching [storage] backend without `attachd migrate` leaves the bytes of
// every object stored before in the old backend, and the index naming them:
// each GET of one would then fail. At each start the server looks for a
// sample of the index's objects where it reads bytes (store.SampleStranded:
// the first object and a few at random, one Stat each) and, if some are
// missing, says so in the log with the command that copies them.
//
// The data directory records, in backendRecordFile, the backend it was last
// served with and found whole: that names the backend to migrate from. The
// record is not moved on while objects are missing, so the advice holds
// over restarts until the migration is done.

const (
	backendRecordFile = "storage-backend"
	strandedSample    = 8
)

// ConfigPath is the configuration file the server was started with, for the
// commands its log advises; "" if none.
var ConfigPath string

// checkStranded samples the store (see above) and logs what it finds.
func (s *Server) checkStranded(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cur := s.cfg.Storage.Backend
	recPath := filepath.Join(s.cfg.DataDir, backendRecordFile)
	prev := ""
	if b, err := os.ReadFile(recPath); err == nil {
		prev = strings.TrimSpace(string(b))
	} else if !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("cannot read the record of the last storage backend", "file", recPath, "err", err)
	}
	res, err := s.store.SampleStranded(ctx, strandedSample)
	if err != nil {
		s.log.Warn("could not check that the objects' bytes are in the storage backend", "err", err)
		return
	}
	switched := prev != "" && prev != cur
	if res.Missing == 0 && res.SpoolOnly > 0 && switched && res.Unknown == 0 {
		cmd := migrateCommand(prev, cur, s.cfg.DataDir)
		s.log.Warn(fmt.Sprintf("%d of %d objects sampled from the index have their bytes only in the data directory, "+
			"not in storage backend %q (e.g. %q): about %d of the index's %d objects (an estimate from the sample). "+
			"This data directory was last served with backend %q: the objects stored then were never copied to %q, "+
			"and replication moves only what changes from now on. They are read from the data directory meanwhile; "+
			"copy them with `%s` (it may run while attachd serves). See docs/migrate.md.",
			res.SpoolOnly, res.Sampled, cur, res.SpoolOnlyEx, spoolEstimate(res), res.Objects, prev, cur, cmd),
			"spool_only", res.SpoolOnly, "sampled", res.Sampled, "previous_backend", prev, "command", cmd)
		return
	}
	if res.Missing == 0 {
		if res.Unknown == 0 && prev != cur {
			if err := os.WriteFile(recPath, []byte(cur+"\n"), 0o640); err != nil {
				s.log.Warn("cannot record the storage backend", "file", recPath, "err", err)
			}
		}
		return
	}
	where := fmt.Sprintf("neither in the data directory nor in storage backend %q", cur)
	if cur == store.LocalBackend {
		where = "not in the data directory (backend \"local\")"
	}
	msg := fmt.Sprintf("%d of %d objects sampled from the index have their bytes %s: "+
		"about %d of the index's %d objects may be unreadable (an estimate from the sample; e.g. %q). ",
		res.Missing, res.Sampled, where, res.Estimate(), res.Objects, res.Example)
	args := []any{"missing", res.Missing, "sampled", res.Sampled, "estimate", res.Estimate(), "objects", res.Objects}
	if switched {
		cmd := migrateCommand(prev, cur, s.cfg.DataDir)
		msg += fmt.Sprintf("This data directory was last served with backend %q and [storage] backend is now %q: "+
			"their bytes are likely still there. Copy them with `%s` (it may run while attachd serves; "+
			"the [plugin.%s] table must stay configured), or set [storage] backend back to %q. See docs/migrate.md.",
			prev, cur, cmd, prev, prev)
		args = append(args, "previous_backend", prev, "command", cmd)
	} else {
		msg += "If [storage] backend was changed without migrating, their bytes are in the backend used before: copy them " +
			"with `" + migrateCommand("OLD", cur, s.cfg.DataDir) + "` (OLD: that backend, \"local\" or its [plugin.OLD] name). " +
			"See docs/migrate.md."
	}
	s.log.Warn(msg, args...)
}

// migrateCommand is the command line that copies the objects from one
// backend to another.
func migrateCommand(from, to, dataDir string) string {
	cmd := "attachd migrate --from " + from + " --to " + to
	if ConfigPath != "" {
		cmd += " --config " + shellQuote(absPath(ConfigPath))
	}
	return cmd + " --data-dir " + shellQuote(absPath(dataDir))
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func spoolEstimate(r store.StrandedSample) int64 {
	r.Missing = r.SpoolOnly
	return r.Estimate()
}
