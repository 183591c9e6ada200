package kazoo

import "fmt"

// Base64Mode says how the media part of a multipart store is read
// (docs/kazoo.md §1.1: nothing in the request says whether Kazoo's
// base64_encode_data is on).
type Base64Mode string

// Base64 modes.
const (
	Base64Auto   Base64Mode = "auto"   // decode when the whole part is strict padded single-line base64
	Base64Always Base64Mode = "always" // always decode; a part that is not base64 is refused
	Base64Never  Base64Mode = "never"  // store the part as it came
)

// UnmarshalText accepts the three modes only, so that a configuration with
// another is refused where it is read, with its key and line.
func (m *Base64Mode) UnmarshalText(b []byte) error {
	switch v := Base64Mode(b); v {
	case Base64Auto, Base64Always, Base64Never:
		*m = v
		return nil
	}
	return fmt.Errorf("want %q, %q or %q, got %q", Base64Auto, Base64Always, Base64Never, b)
}

// Config is the [kazoo] table.
type Config struct {
	Base64    Base64Mode `toml:"base64"`
	KeyParams []string   `toml:"key_params"` // query parameters whose values extend the key
}

// DefaultConfig is the [kazoo] table when the file has none.
func DefaultConfig() Config {
	return Config{Base64: Base64Auto, KeyParams: DefaultKeyParams}
}

// Validate checks what the types alone do not; errors name the key.
func (c Config) Validate() error {
	for i, p := range c.KeyParams {
		if p == "" {
			return fmt.Errorf("key_params: entry %d is empty", i+1)
		}
	}
	return nil
}
