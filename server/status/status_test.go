package status

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attachd/attachd/server/store"
)

// storeErrors is every exported error of package store with the status a
// client must hear for it. TestEveryStoreError keeps it complete.
var storeErrors = map[string]struct {
	err  error
	code int
}{
	"ErrNotFound":    {store.ErrNotFound, http.StatusNotFound},
	"ErrExists":      {store.ErrExists, http.StatusPreconditionFailed},
	"ErrConflict":    {store.ErrConflict, http.StatusConflict},
	"ErrNotEmpty":    {store.ErrNotEmpty, http.StatusConflict},
	"ErrInvalidKey":  {store.ErrInvalidKey, http.StatusBadRequest},
	"ErrShortBody":   {store.ErrShortBody, http.StatusBadRequest},
	"ErrTooLarge":    {store.ErrTooLarge, http.StatusRequestEntityTooLarge},
	"ErrNoSpace":     {store.ErrNoSpace, http.StatusInsufficientStorage},
	"ErrQuota":       {store.ErrQuota, http.StatusInsufficientStorage},
	"ErrLocked":      {store.ErrLocked, http.StatusLocked},
	"ErrUnavailable": {store.ErrUnavailable, http.StatusServiceUnavailable},
	"ErrCorrupt":     {store.ErrCorrupt, http.StatusInternalServerError},
	// Only attachd migrate meets it; a client would hear the default.
	"ErrChecksum": {store.ErrChecksum, http.StatusInternalServerError},
}

// exportedErrors parses package store for its exported Err* variables.
func exportedErrors(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../store/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if n.IsExported() && strings.HasPrefix(n.Name, "Err") {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	slices.Sort(names)
	return names
}

// TestEveryStoreError checks the table against every exported error of the
// store, wrapped as the store wraps them: a new error without a row fails
// here instead of turning into a 500.
func TestEveryStoreError(t *testing.T) {
	names := exportedErrors(t)
	for _, name := range names {
		want, ok := storeErrors[name]
		if !ok {
			t.Errorf("store.%s has no status in this table", name)
			continue
		}
		code, msg := Of(fmt.Errorf("op on %q: %w", "key", want.err))
		if code != want.code {
			t.Errorf("store.%s: status %d, want %d", name, code, want.code)
		}
		if msg == "" {
			t.Errorf("store.%s: empty message", name)
		}
	}
	for name := range storeErrors {
		if !slices.Contains(names, name) {
			t.Errorf("store.%s is listed here but no longer exported", name)
		}
	}
}

func TestBodyAndContextErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{&store.BodyError{Err: fmt.Errorf("connection reset")}, http.StatusBadRequest},
		{fmt.Errorf("copy: %w", &http.MaxBytesError{Limit: 1}), http.StatusRequestEntityTooLarge},
		{fmt.Errorf("commit: %w", context.Canceled), http.StatusServiceUnavailable},
		{fmt.Errorf("something else"), http.StatusInternalServerError},
	} {
		if code, _ := Of(tc.err); code != tc.code {
			t.Errorf("%v: %d, want %d", tc.err, code, tc.code)
		}
	}
}
