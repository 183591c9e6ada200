package config

import (
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Changed returns the keys whose values differ between a and b, dotted as
// in the file ("limits.max_uploads", "hook.webhook.timeout"), in the order
// of the Config type. An array of tables ("users", "retention") and a
// plugin's own tables ("plugin.s3.config") are one key each: the reload
// that uses it applies or refuses them whole, and a key holding secrets is
// named without its values.
func Changed(a, b Config) []string {
	var out []string
	changed("", reflect.ValueOf(a), reflect.ValueOf(b), &out)
	return out
}

func changed(key string, a, b reflect.Value, out *[]string) {
	switch {
	case a.Kind() == reflect.Struct && hasTOMLFields(a.Type()):
		for i := range a.NumField() {
			f := a.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			changed(join(key, name), a.Field(i), b.Field(i), out)
		}
	case a.Kind() == reflect.Map && a.Type().Elem().Kind() == reflect.Struct:
		// [plugin.NAME], [hook.NAME]: each name a table of its own.
		names := map[string]bool{}
		for _, m := range []reflect.Value{a, b} {
			for _, k := range m.MapKeys() {
				names[k.String()] = true
			}
		}
		for _, name := range slices.Sorted(maps.Keys(names)) {
			k := reflect.ValueOf(name)
			va, vb := a.MapIndex(k), b.MapIndex(k)
			if !va.IsValid() || !vb.IsValid() {
				*out = append(*out, join(key, name))
				continue
			}
			changed(join(key, name), va, vb, out)
		}
	case (a.Kind() == reflect.Slice || a.Kind() == reflect.Map) && a.Len() == 0 && b.Len() == 0:
		// nil and empty are the same setting.
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, key)
		}
	}
}

// hasTOMLFields reports whether t is a table of the file, not a value
// (time.Time-like types have no tagged fields).
func hasTOMLFields(t reflect.Type) bool {
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("toml") != "" {
			return true
		}
	}
	return false
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}
