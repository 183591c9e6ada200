package storetest_test

import (
	"testing"

	"github.com/attachd/attachd/server/store"
	"github.com/attachd/attachd/server/store/storetest"
)

func TestDirBackend(t *testing.T) {
	b, err := store.NewDirBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	storetest.Run(t, func(*testing.T) store.Backend { return b })
}

func TestMemBackend(t *testing.T) {
	b := store.NewMemBackend()
	storetest.Run(t, func(*testing.T) store.Backend { return b })
}
