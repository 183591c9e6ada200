package server

import (
	"log/slog"

	"github.com/attachd/attachd/server/config"
	"github.com/attachd/attachd/server/dav"
	"github.com/attachd/attachd/server/store"
)

// newDAV builds the WebDAV handler served at /dav/.
func newDAV(cfg config.Config, st *store.Store, log *slog.Logger) (*dav.Handler, error) {
	return dav.New(dav.Options{
		Store:     st,
		Prefix:    "/dav",
		PublicURL: cfg.PublicURL,
		ByDate:    cfg.DAV.ByDate,
		HideJunk:  cfg.DAV.HideJunk,
		Log:       log,

		MaxXMLBody:    int64(cfg.Limits.MaxXMLBody),
		MaxXMLDepth:   cfg.Limits.MaxXMLDepth,
		MaxProps:      cfg.Limits.MaxProps,
		MaxPropsBytes: int64(cfg.Limits.MaxPropsBytes),
	})
}
