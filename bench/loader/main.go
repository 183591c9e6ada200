// Command loader fills a collection for bench/run.sh's PROPFIND step: it PUTs n files of
// random bytes, named f-000000.bin, f-000001.bin, …, under a base URL with a few concurrent
// connections, and fails if any PUT does not answer 2xx.
//
//	go run ./bench/loader -url http://127.0.0.1:8080/propfind-10000/ -n 10000 -size 1024 -c 8
package main

import (
	"bytes"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	base := flag.String("url", "", "collection URL, ending in /")
	n := flag.Int("n", 10000, "number of files")
	size := flag.Int("size", 1024, "bytes per file")
	conc := flag.Int("c", 8, "concurrent connections")
	flag.Parse()
	if !strings.HasSuffix(*base, "/") || *n < 1 || *size < 0 || *conc < 1 {
		fmt.Fprintln(os.Stderr, "loader: need -url ending in /, -n >= 1, -size >= 0, -c >= 1")
		os.Exit(2)
	}
	if err := load(*base, *n, *size, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "loader:", err)
		os.Exit(1)
	}
}

func load(base string, n, size, conc int) error {
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: conc, DisableCompression: true},
		Timeout:   60 * time.Second,
	}
	var (
		next     atomic.Int64
		failed   atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := make([]byte, size)
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() > 0 {
					return
				}
				if _, err := rand.Read(body); err != nil {
					panic(err) // crypto/rand never fails on Linux
				}
				url := fmt.Sprintf("%sf-%06d.bin", base, i)
				if err := put(client, url, body); err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	elapsed := time.Since(start)
	fmt.Printf("loader: %d x %d B PUT to %s in %.2f s (%.0f req/s)\n",
		n, size, base, elapsed.Seconds(), float64(n)/elapsed.Seconds())
	return nil
}

func put(client *http.Client, url string, body []byte) error {
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("PUT %s: %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
