package main

// Checks of the packaging files that need no root and no image builder (there
// is no Docker daemon on the test machines): the Dockerfile's shape, the
// systemd unit's hardening, and the configuration the packages ship.
// packaging/test-deb.sh installs the real package (./test.sh runs it).

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attachd/attachd/server/config"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, …
	args string
}

// parseDockerfile splits a Dockerfile into instructions, dropping comments and
// joining lines that end in a backslash.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		cont := strings.HasSuffix(trimmed, "\\")
		cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
		if cont {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{start, strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("%s ends in a continuation line", path)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	var stages []string // stage names, "" for unnamed
	var final []instruction
	for _, in := range parseDockerfile(t, "Dockerfile") {
		switch in.cmd {
		case "FROM":
			f := strings.Fields(in.args)
			image := f[0]
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stages = append(stages, f[2])
			} else {
				stages = append(stages, "")
			}
			if slices.Contains(stages, image) {
				break // FROM an earlier stage
			}
			name, digest, _ := strings.Cut(image, "@")
			tag := ""
			if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
				tag = name[i+1:]
			}
			if (tag == "" && digest == "") || tag == "latest" {
				t.Errorf("line %d: FROM %s: pin the base image by a version tag or a digest", in.line, image)
			}
			final = nil
		case "ADD":
			for _, src := range strings.Fields(in.args) {
				if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
					t.Errorf("line %d: ADD %s: fetch nothing at build time that the repository does not pin", in.line, src)
				}
			}
		case "COPY":
			for _, f := range strings.Fields(in.args) {
				if from, ok := strings.CutPrefix(f, "--from="); ok && !slices.Contains(stages[:len(stages)-1], from) {
					t.Errorf("line %d: COPY --from=%s: no earlier stage has that name", in.line, from)
				}
			}
		}
		final = append(final, in)
	}
	if len(stages) < 2 {
		t.Errorf("%d stage(s): build in one stage and ship only the binaries in another", len(stages))
	}
	if !strings.Contains(dockerArgs(t, stagesOf(t, 0), "RUN"), "CGO_ENABLED=0 go build") {
		t.Error("the build stage does not build attachd with CGO_ENABLED=0: the runtime image has no C library")
	}

	user := dockerArgs(t, final, "USER")
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("final stage USER %q: run as a non-root user", user)
	}
	if !slices.Contains(jsonArray(t, dockerArgs(t, final, "VOLUME")), "/var/lib/attachd") {
		t.Error("no VOLUME /var/lib/attachd: the data would live in the container's writable layer")
	}
	hc := dockerArgs(t, final, "HEALTHCHECK")
	cmd, ok := strings.CutPrefix(hc[strings.Index(hc, "CMD"):], "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %q has no CMD", hc)
	}
	if args := jsonArray(t, cmd); len(args) < 2 || args[0] != "/usr/bin/attachd" || args[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK CMD %q: want /usr/bin/attachd healthcheck (the image has no shell and no curl)", cmd)
	}
	if !strings.Contains(hc, "http://127.0.0.1:"+dockerArgs(t, final, "EXPOSE")+"/readyz") {
		t.Errorf("HEALTHCHECK %q does not ask /readyz on the port the image exposes", hc)
	}
	if ep := jsonArray(t, dockerArgs(t, final, "ENTRYPOINT")); len(ep) != 1 || ep[0] != "/usr/bin/attachd" {
		t.Errorf("ENTRYPOINT %q, want [\"/usr/bin/attachd\"]", ep)
	}
}

// stagesOf returns the instructions of stage n (0 is the first).
func stagesOf(t *testing.T, n int) []instruction {
	var stage []instruction
	i := -1
	for _, in := range parseDockerfile(t, "Dockerfile") {
		if in.cmd == "FROM" {
			i++
		}
		if i == n {
			stage = append(stage, in)
		}
	}
	return stage
}

// dockerArgs returns the arguments of the last instruction cmd in ins (the
// one in force), all RUN instructions' joined.
func dockerArgs(t *testing.T, ins []instruction, cmd string) string {
	t.Helper()
	var all []string
	for _, in := range ins {
		if in.cmd == cmd {
			all = append(all, in.args)
		}
	}
	if len(all) == 0 {
		t.Fatalf("the Dockerfile's stage has no %s", cmd)
	}
	if cmd == "RUN" {
		return strings.Join(all, "\n")
	}
	return all[len(all)-1]
}

// jsonArray reads the exec form ["a", "b"] of an instruction.
func jsonArray(t *testing.T, s string) []string {
	t.Helper()
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		t.Errorf("%q: want the exec form [\"…\", …]", s)
		return nil
	}
	var out []string
	for _, f := range strings.Split(s[1:len(s)-1], ",") {
		out = append(out, strings.Trim(strings.TrimSpace(f), `"`))
	}
	return out
}

// unitSettings reads a systemd unit's [Service] section: key → values.
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string][]string{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("%s: %q is not key=value", path, line)
			}
			set[k] = append(set[k], v)
		}
	}
	return set
}

func TestSystemdUnit(t *testing.T) {
	set := unitSettings(t, "packaging/attachd.service")
	for key, want := range map[string]string{
		"User":                    "attachd",
		"ExecStart":               "/usr/bin/attachd serve --config /etc/attachd/attachd.toml",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"Restart":                 "on-failure",
		"ProtectSystem":           "strict",
		"ReadWritePaths":          "/var/lib/attachd",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "", // empty: no capability at all
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	} {
		if got := set[key]; len(got) != 1 || got[0] != want {
			t.Errorf("[Service] %s = %q, want exactly %q", key, got, want)
		}
	}
	// What the unit runs is what the package installs.
	nfpm, err := os.ReadFile("packaging/nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{"/usr/bin/attachd", "/etc/attachd/attachd.toml", "/usr/lib/systemd/system/attachd.service"} {
		if !strings.Contains(string(nfpm), "dst: "+dst+"\n") {
			t.Errorf("packaging/nfpm.yaml installs no %s", dst)
		}
	}
}

// TestPackagedConfig runs the script that writes the packages' configuration
// and loads what it wrote: every shipped plugin pinned, the data in the
// directory the unit may write and the image keeps in its volume.
func TestPackagedConfig(t *testing.T) {
	built := t.TempDir()
	sums := map[string]string{}
	for _, name := range []string{"s3", "sftp"} {
		body := []byte("a stand-in for attachd-plugin-" + name)
		os.WriteFile(filepath.Join(built, "attachd-plugin-"+name), body, 0o755)
		sum := sha256.Sum256(body)
		sums[name] = hex.EncodeToString(sum[:])
	}
	out, err := exec.Command("sh", "packaging/config.sh", "0.0.0.0:37635", "/usr/lib/attachd/plugins", built).Output()
	if err != nil {
		t.Fatalf("packaging/config.sh: %v", err)
	}
	file := filepath.Join(t.TempDir(), "attachd.toml")
	os.WriteFile(file, out, 0o600)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("the packaged configuration does not load: %v\n%s", err, out)
	}
	if cfg.Listen != "0.0.0.0:37635" || cfg.DataDir != "/var/lib/attachd" || cfg.Plugins.Dir != "/usr/lib/attachd/plugins" {
		t.Errorf("listen %q, data_dir %q, plugins.dir %q", cfg.Listen, cfg.DataDir, cfg.Plugins.Dir)
	}
	if len(cfg.Plugin) != len(sums) {
		t.Errorf("%d plugins pinned, want %d", len(cfg.Plugin), len(sums))
	}
	for name, sum := range sums {
		if got := cfg.Plugin[name].SHA256; got != sum {
			t.Errorf("[plugin.%s] sha256 = %q, want %q", name, got, sum)
		}
	}

	// No plugin to pin is a mistake in the build, not an empty configuration.
	cmd := exec.Command("sh", "packaging/config.sh", "0.0.0.0:37635", "/usr/lib/attachd/plugins", t.TempDir())
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "no attachd-plugin-*") {
		t.Errorf("packaging/config.sh with no plugins: %v\n%s", err, b)
	}
}

func TestPackagingScripts(t *testing.T) {
	for _, f := range []string{"packaging/build-deb.sh", "packaging/test-deb.sh", "packaging/config.sh",
		"packaging/scripts/preinst", "packaging/scripts/postinst", "packaging/scripts/prerm", "packaging/scripts/postrm"} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s: %v; want an executable file", f, err)
			continue
		}
		shell := "sh"
		if b, _ := os.ReadFile(f); strings.HasPrefix(string(b), "#!/usr/bin/env bash") {
			shell = "bash"
		}
		if b, err := exec.Command(shell, "-n", f).CombinedOutput(); err != nil {
			t.Errorf("%s -n %s: %v\n%s", shell, f, err, b)
		}
	}
}
