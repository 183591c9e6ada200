package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHealthcheckCommand runs `attachd healthcheck`, the container image's
// HEALTHCHECK, against a real server: ready, over HTTPS, and stopped.
func TestHealthcheckCommand(t *testing.T) {
	if clusterNodes(t) > 0 {
		t.Skip("one process is checked, not a cluster behind a proxy")
	}
	t.Parallel()
	check := func(args ...string) (string, error) {
		out, err := exec.Command(attachdBinary(t), append([]string{"healthcheck"}, args...)...).CombinedOutput()
		return string(out), err
	}

	srv := startServer(t, serverOptions{})
	url := "http://" + srv.Addr + "/readyz"
	if out, err := check("--url", url); err != nil || !strings.Contains(out, "200 OK") {
		t.Errorf("healthcheck of a ready server: %v\n%s", err, out)
	}
	srv.stop(t)
	if out, err := check("--url", url); err == nil || !strings.Contains(out, "connection refused") {
		t.Errorf("healthcheck of a stopped server: %v\n%s", err, out)
	}

	// Over HTTPS the probe on loopback cannot verify the certificate (a CA of
	// its own here; in production one naming the public host): --insecure.
	f := newTLSFiles(t)
	tlsSrv := startServer(t, serverOptions{Config: &config{Extra: f.toml("")}, TLS: f.client()})
	url = "https://" + tlsSrv.Addr + "/readyz"
	if out, err := check("--url", url, "--insecure"); err != nil || !strings.Contains(out, "200 OK") {
		t.Errorf("healthcheck --insecure of an HTTPS server: %v\n%s", err, out)
	}
	if out, err := check("--url", "http://"+tlsSrv.Addr+"/readyz"); err == nil {
		t.Errorf("healthcheck over plain HTTP of an HTTPS server passed:\n%s", out)
	}
}
