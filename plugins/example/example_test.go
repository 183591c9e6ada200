package main

import (
	"os"
	"strings"
	"testing"
)

// The plugin guide shows this plugin verbatim; keep them the same. (The
// plugin itself is built and run by plugins/host's conformance tests.)
func TestGuideShowsExample(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/plugins.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```go\n"+string(src)+"```\n") {
		t.Error("docs/plugins.md does not show plugins/example/main.go verbatim")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```go\n"+string(src)+"```\n") {
		t.Error("README.md does not show plugins/example/main.go verbatim")
	}
	if n := strings.Count(string(src), "\n"); n >= 60 {
		t.Errorf("the example has %d lines; the guide promises fewer than 60", n)
	}
}
