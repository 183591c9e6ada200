package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// annotationPrefix starts a stdout line that is an annotation:
// "annotation: key=value". Other lines are ignored, so a tool's chatter on
// stdout does not turn into annotations.
const annotationPrefix = "annotation:"

// Limits on annotations from one run.
const (
	maxAnnotations = 64      // distinct keys kept; a repeated key replaces its value
	maxKey         = 128     // bytes in a key
	maxValue       = 4 << 10 // bytes in a value; longer ones are cut
	maxLine        = len(annotationPrefix) + 1 + maxKey + 1 + maxValue
)

// annotationWriter is the command's stdout. It parses annotation lines as
// they come, holding at most one line of maxLine bytes, so a command that
// prints without end cannot fill the plugin's memory.
type annotationWriter struct {
	line []byte
	cut  bool // the current line was longer than maxLine

	ann       map[string]string
	extra     int      // annotations beyond maxAnnotations
	badKeys   []string // the first few invalid keys
	cutValues int
}

// Write implements io.Writer; it never fails, so the command never blocks
// on stdout.
func (w *annotationWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		chunk, rest, eol := bytes.Cut(p, []byte{'\n'})
		if room := maxLine - len(w.line); len(chunk) > room {
			chunk = chunk[:room]
			w.cut = true
		}
		w.line = append(w.line, chunk...)
		if !eol {
			break
		}
		w.endLine()
		p = rest
	}
	return n, nil
}

// endLine handles a complete line.
func (w *annotationWriter) endLine() {
	line, cut := string(w.line), w.cut
	w.line, w.cut = w.line[:0], false
	rest, ok := strings.CutPrefix(line, annotationPrefix)
	if !ok {
		return
	}
	if !cut {
		rest = strings.TrimSuffix(rest, "\r")
	}
	k, v, ok := strings.Cut(strings.TrimLeft(rest, " \t"), "=")
	k = strings.TrimSpace(k)
	if !ok || !validKey(k) {
		if len(w.badKeys) < 5 {
			w.badKeys = append(w.badKeys, strconv.Quote(truncateUTF8(k, 64)))
		}
		return
	}
	if cut || len(v) > maxValue {
		v = truncateUTF8(v, maxValue)
		w.cutValues++
	}
	// Annotations travel as protobuf strings, which must be UTF-8.
	v = strings.ToValidUTF8(v, "\uFFFD")
	if _, seen := w.ann[k]; !seen && len(w.ann) >= maxAnnotations {
		w.extra++
		return
	}
	if w.ann == nil {
		w.ann = map[string]string{}
	}
	w.ann[k] = v
}

// result returns the annotations and a note on what was dropped. Call it
// after the command's stdout is closed.
func (w *annotationWriter) result() (map[string]string, string) {
	if len(w.line) > 0 || w.cut {
		w.endLine() // a last line without a newline
	}
	var notes []string
	if w.extra > 0 {
		notes = append(notes, fmt.Sprintf("%d annotations beyond the first %d dropped", w.extra, maxAnnotations))
	}
	if len(w.badKeys) > 0 {
		notes = append(notes, "annotation lines with invalid keys ignored: "+strings.Join(w.badKeys, ", "))
	}
	if w.cutValues > 0 {
		notes = append(notes, fmt.Sprintf("%d annotation values cut to %d bytes", w.cutValues, maxValue))
	}
	return w.ann, strings.Join(notes, "; ")
}

// validKey accepts 1 to maxKey ASCII letters, digits, '.', '_' and '-'.
func validKey(k string) bool {
	if k == "" || len(k) > maxKey {
		return false
	}
	for _, r := range k {
		if !(r == '.' || r == '_' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Limits on the stderr quoted in a failure message.
const (
	maxTail   = 4 << 10
	tailLines = 10
)

// tailWriter is the command's stderr: it keeps the last maxTail bytes.
type tailWriter struct {
	buf []byte
}

// Write implements io.Writer; it never fails.
func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) > 2*maxTail {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-maxTail:]...)
	}
	return len(p), nil
}

// lines returns the last tailLines lines of stderr, as valid UTF-8.
func (w *tailWriter) lines() string {
	b := w.buf
	if len(b) > maxTail {
		b = b[len(b)-maxTail:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:] // drop the partial first line
		}
	}
	s := strings.TrimRight(strings.ToValidUTF8(string(b), "\uFFFD"), " \t\r\n")
	lines := strings.Split(s, "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return strings.Join(lines, "\n")
}
