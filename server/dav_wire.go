package server

import (
	"log/slog"
	"net/http"

	"github.com/attachd/attachd/server/config"
	"github.com/attachd/attachd/server/store"
)

// newDAV builds the WebDAV handler served at /dav/.
func newDAV(cfg config.Config, st *store.Store, log *slog.Logger) (http.Handler, error) {
	return nil, nil // the WebDAV drive is built in server/dav
}
