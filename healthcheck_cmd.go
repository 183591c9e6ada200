package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// defaultHealthURL is /readyz on the default listen address.
const defaultHealthURL = "http://127.0.0.1:37635/readyz"

func healthcheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "healthcheck",
		Usage: "exit 0 if the server answers its readiness check, 1 if not",
		Description: "GETs --url and exits 0 on a 2xx answer, else prints the status (or the error)\n" +
			"and exits 1. It is the Docker image's HEALTHCHECK: a distroless image has no curl.\n" +
			"/readyz answers loopback (and allow_from) only: run it beside the server.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: defaultHealthURL, Usage: "the readiness `URL` to GET"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "give up after `DURATION`"},
			&cli.BoolFlag{Name: "insecure", Usage: "with an https:// URL, do not verify the server's certificate " +
				"(it names the public host, not the loopback address the probe asks)"},
		},
		Action: noArgs(healthcheck),
	}
}

func healthcheck(c *cli.Context) error {
	u, err := url.Parse(c.String("url"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("healthcheck: --url %q: want an http:// or https:// URL", c.String("url"))
	}
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		return fmt.Errorf("healthcheck: --timeout %s: must be positive", timeout)
	}
	client := &http.Client{
		Timeout: timeout,
		// A probe asks the server itself: a proxy from the environment, or
		// a redirect to a login page, would answer for it.
		Transport: &http.Transport{
			Proxy:           nil,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: c.Bool("insecure")},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	resp, err := client.Get(u.String())
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		fmt.Fprintf(c.App.Writer, "%s: %s\n", u, resp.Status)
		return nil
	}
	// /readyz says why it is not ready in its body: show the first line.
	why, _ := bufio.NewReader(io.LimitReader(resp.Body, 1024)).ReadString('\n')
	if why = strings.TrimSpace(why); why != "" {
		why = ": " + why
	}
	return errors.New("healthcheck: " + u.String() + " answered " + resp.Status + why)
}
