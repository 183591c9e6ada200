package dav

import "fmt"

// JunkPolicy says what the drive does with OS junk files (.DS_Store, ._*,
// Thumbs.db, desktop.ini).
type JunkPolicy string

// Junk policies.
const (
	JunkOff    JunkPolicy = "off"    // treat OS junk like any other file
	JunkHide   JunkPolicy = "hide"   // leave it out of listings and discard writes of it
	JunkRefuse JunkPolicy = "refuse" // refuse to create it (403)
)

// UnmarshalText accepts the three policies only, so that a configuration
// with another is refused where it is read, with its key and line.
func (p *JunkPolicy) UnmarshalText(b []byte) error {
	switch v := JunkPolicy(b); v {
	case JunkOff, JunkHide, JunkRefuse:
		*p = v
		return nil
	}
	return fmt.Errorf("want %q, %q or %q, got %q", JunkOff, JunkHide, JunkRefuse, b)
}

// Config is the [dav] table.
type Config struct {
	Enabled  bool       `toml:"enabled"`   // serve the drive at /dav/
	ByDate   bool       `toml:"by_date"`   // the read-only @by-date view
	HideJunk JunkPolicy `toml:"hide_junk"` // OS junk files
}

// DefaultConfig is the [dav] table when the file has none.
func DefaultConfig() Config { return Config{Enabled: true, ByDate: true, HideJunk: JunkHide} }
