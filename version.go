package main

import (
	"runtime/debug"
	"strings"
)

// version and commit are set at build time by packaging/build-deb.sh and the
// Dockerfile: -ldflags "-X main.version=1.2.3 -X main.commit=0123abcd…".
// Left empty, they come from the build information Go records itself.
var (
	version = ""
	commit  = ""
)

// buildVersion is what --version and `attachd version` print.
func buildVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(version, commit, bi)
}

// formatVersion says which release and which commit a binary was built from:
// "1.2.3 (commit 0123456789ab)", "devel (commit 0123456789ab, modified)".
// The commit is what a bug report needs most, and a release number alone does
// not give it: a locally patched build carries the same number.
func formatVersion(version, commit string, bi *debug.BuildInfo) string {
	modified := false
	if bi != nil {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if commit == "" {
					commit = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		// `go install …@v1.2.3` records the module version; a build from a
		// work tree records "(devel)".
		if v := bi.Main.Version; version == "" && v != "" && v != "(devel)" {
			version = v
		}
	}
	if version == "" {
		version = "devel"
	}
	if commit == "" {
		return version
	}
	commit, dirty := strings.CutSuffix(commit, "-dirty")
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if modified || dirty {
		return version + " (commit " + commit + ", modified)"
	}
	return version + " (commit " + commit + ")"
}

// versionAndCommit returns the release and the commit apart, as
// formatVersion finds them, for the attachd_build_info metric.
func versionAndCommit() (v, c string) {
	v, c = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
		}
		if m := bi.Main.Version; v == "" && m != "" && m != "(devel)" {
			v = m
		}
	}
	if v == "" {
		v = "devel"
	}
	return v, c
}
