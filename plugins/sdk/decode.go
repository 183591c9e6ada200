package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// decodeStrict decodes data into v, refusing unknown keys, and rewrites
// encoding/json's errors to name the key as the operator wrote it.
func decodeStrict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	err := d.Decode(v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return ConfigError(te.Field, "want a %s, got %s", te.Type, te.Value)
	}
	// encoding/json reports unknown fields only as text: `json: unknown field "x"`.
	if rest, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown key %s", rest)
	}
	return err
}
