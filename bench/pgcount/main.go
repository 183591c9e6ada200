// Command pgcount is a TCP proxy in front of PostgreSQL that counts the protocol messages going
// through it, for bench/cluster.sh's round trips per PUT.
//
//	pgcount -listen 127.0.0.1:PORT -to 127.0.0.1:5432 -stats 127.0.0.1:PORT2
//
// Clients connect to -listen (with sslmode=disable: the client's stream is then the untyped
// startup message followed by typed messages, the server's all typed). GET http://STATS/ answers
// one line of counters since the start:
//
//	conns=N rfq=N sync=N query=N execute=N parse=N c2s_bytes=N s2c_bytes=N
//
// rfq counts the server's ReadyForQuery messages: the server sends exactly one at the end of
// each simple Query and each Sync, and the client waits for it, so rfq is the number of round
// trips that completed (several statements sent as one pgx batch, or BEGIN sent with the first
// statement, end with one Sync: one round trip). execute counts extended-protocol Execute
// messages and query simple-protocol Query messages: statements sent (a simple Query may hold
// several). parse counts Parse messages (statements prepared: pgx caches them per connection).
//
// -delay D holds each ReadyForQuery for D before passing it on, so that every round trip costs
// at least D more: a PostgreSQL on another machine, for the latency a node's stores see.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

var (
	conns, rfq, syncs, queries, executes, parses, c2s, s2c atomic.Int64
	delay                                                  time.Duration
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to accept PostgreSQL clients on")
	to := flag.String("to", "", "PostgreSQL server address (host:port)")
	stats := flag.String("stats", "127.0.0.1:0", "address of the HTTP counters endpoint")
	flag.DurationVar(&delay, "delay", 0, "hold each ReadyForQuery this long: a round trip to a PostgreSQL that far")
	flag.Parse()
	if *to == "" {
		log.Fatal("pgcount: -to is required")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	sl, err := net.Listen("tcp", *stats)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listen=%s stats=%s\n", ln.Addr(), sl.Addr())
	go func() {
		log.Fatal(http.Serve(sl, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "conns=%d rfq=%d sync=%d query=%d execute=%d parse=%d c2s_bytes=%d s2c_bytes=%d\n",
				conns.Load(), rfq.Load(), syncs.Load(), queries.Load(), executes.Load(), parses.Load(), c2s.Load(), s2c.Load())
		})))
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go proxy(c, *to)
	}
}

func proxy(c net.Conn, to string) {
	defer c.Close()
	s, err := net.Dial("tcp", to)
	if err != nil {
		log.Printf("pgcount: dial %s: %v", to, err)
		return
	}
	defer s.Close()
	conns.Add(1)
	done := make(chan struct{}, 2)
	go func() { pump(s, c, true); s.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { pump(c, s, false); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

// pump copies src to dst message by message, counting. fromClient: src is the client, whose
// first message (and any SSLRequest/GSSENCRequest before the real startup) has no type byte.
func pump(dst io.Writer, src io.Reader, fromClient bool) {
	r := bufio.NewReaderSize(src, 64<<10)
	w := bufio.NewWriterSize(dst, 64<<10)
	untyped := fromClient
	hdr := make([]byte, 5)
	for {
		var typ byte
		var n int
		if untyped {
			if _, err := io.ReadFull(r, hdr[:4]); err != nil {
				return
			}
			n = int(binary.BigEndian.Uint32(hdr[:4]))
			if _, err := w.Write(hdr[:4]); err != nil {
				return
			}
			if n >= 8 {
				code := make([]byte, 4)
				if _, err := io.ReadFull(r, code); err != nil {
					return
				}
				if _, err := w.Write(code); err != nil {
					return
				}
				n -= 4
				// 80877103 SSLRequest, 80877104 GSSENCRequest: the real startup follows (the
				// server's one-byte answer is not framed; use sslmode=disable to avoid it).
				if c := binary.BigEndian.Uint32(code); c != 80877103 && c != 80877104 {
					untyped = false
				}
			}
			n -= 4
		} else {
			if _, err := io.ReadFull(r, hdr); err != nil {
				return
			}
			typ = hdr[0]
			n = int(binary.BigEndian.Uint32(hdr[1:5])) - 4
			if _, err := w.Write(hdr); err != nil {
				return
			}
			if fromClient {
				switch typ {
				case 'S':
					syncs.Add(1)
				case 'Q':
					queries.Add(1)
				case 'E':
					executes.Add(1)
				case 'P':
					parses.Add(1)
				}
			} else if typ == 'Z' {
				rfq.Add(1)
			}
		}
		if n < 0 {
			return
		}
		if _, err := io.CopyN(w, r, int64(n)); err != nil {
			return
		}
		if fromClient {
			c2s.Add(int64(n) + 5)
		} else {
			s2c.Add(int64(n) + 5)
		}
		if typ == 'Z' && !fromClient && delay > 0 {
			time.Sleep(delay)
			if err := w.Flush(); err != nil {
				return
			}
		}
		// Flush unless a whole next header is already buffered (a partial one could wait
		// forever for bytes the peer sends only after it has this message).
		if r.Buffered() < 5 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}
