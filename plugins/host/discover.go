package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FilePrefix starts the file name of every plugin executable.
const FilePrefix = "attachd-plugin-"

// Found is a plugin executable in the plugins folder.
type Found struct {
	Name string // from the file name attachd-plugin-<Name>
	Path string
	Err  error // why the file cannot be used, or nil
}

// Discover lists the files named attachd-plugin-* in dir, sorted by name,
// each with the reason it cannot be used, if any. It does not run them.
func Discover(dir string) ([]Found, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("plugins dir: %w", err)
	}
	var out []Found
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), FilePrefix)
		if !ok || name == "" {
			continue
		}
		path, err := Locate(dir, name)
		if path == "" {
			path = filepath.Join(dir, e.Name())
		}
		out = append(out, Found{Name: name, Path: path, Err: err})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Locate returns the path of plugin name in dir, checking that it is a
// regular executable file, not writable by group or others, and that a
// symlink resolves inside dir: anyone who can swap the file can run code as
// attachd, and the SHA-256 pin is checked only at start.
func Locate(dir, name string) (string, error) {
	if !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("plugins dir %s: %w", dir, err)
		}
		dir = abs
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("plugins dir: %w", err)
	}
	if fi, err := os.Stat(realDir); err != nil {
		return "", fmt.Errorf("plugins dir: %w", err)
	} else if fi.Mode().Perm()&0o002 != 0 {
		return "", fmt.Errorf("plugins dir %s is writable by everyone; refusing to run plugins from it", dir)
	}
	path := filepath.Join(dir, FilePrefix+name)
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("plugin %s: no file %s", name, path)
	}
	if err != nil {
		return "", fmt.Errorf("plugin %s: %w", name, err)
	}
	if rel, err := filepath.Rel(realDir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("plugin %s: %s is a symlink to %s, outside the plugins dir", name, path, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("plugin %s: %w", name, err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("plugin %s: %s is not a regular file", name, path)
	case fi.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("plugin %s: %s is not executable (chmod +x)", name, path)
	case fi.Mode().Perm()&0o022 != 0:
		return "", fmt.Errorf("plugin %s: %s is writable by group or others (chmod go-w)", name, path)
	}
	return real, nil
}

// HashFile returns the hex SHA-256 of the file at path, the value that
// [plugin.NAME] sha256 pins.
func HashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
