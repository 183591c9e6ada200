// Package pgtest gives a test a PostgreSQL database of its own: an empty one
// created beside the database of $ATTACHD_TEST_PG_URL (a throwaway server:
// .ci/postgres.sh start DIR, then . DIR/env; test.sh does both), and
// dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Database creates an empty database and returns its URL, with the
// password of $ATTACHD_TEST_PG_URL. Without that variable the test fails,
// saying how to start one; under -short it is skipped.
func Database(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("ATTACHD_TEST_PG_URL")
	if admin == "" {
		if testing.Short() {
			t.Skip("ATTACHD_TEST_PG_URL is not set (-short)")
		}
		t.Fatal("ATTACHD_TEST_PG_URL is not set: start a PostgreSQL with `.ci/postgres.sh start DIR && . DIR/env` (./test.sh does), or run with -short")
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("ATTACHD_TEST_PG_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	defer c.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	u.Path = "/" + name
	return u.String()
}
