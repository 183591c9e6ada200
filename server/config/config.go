// Package config reads attachd's TOML configuration file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/attachd/attachd/server/dav"
	"github.com/attachd/attachd/server/forwarded"
	"github.com/attachd/attachd/server/kazoo"
	"github.com/attachd/attachd/server/retention"
	"github.com/attachd/attachd/server/store"
	"github.com/attachd/attachd/server/store/readcache"
	"github.com/attachd/attachd/server/tlsconf"
)

// Config is the whole configuration. The zero value of every field is
// replaced by its default (see Default); config.example.toml documents each.
type Config struct {
	Listen            string   `toml:"listen"`
	DataDir           string   `toml:"data_dir"`
	MaxBody           Size     `toml:"max_body"`
	AllowAnonymous    bool     `toml:"allow_anonymous"`
	AllowFrom         []string `toml:"allow_from"`
	PublicURL         string   `toml:"public_url"`
	TrustedProxies    []string `toml:"trusted_proxies"`
	ShutdownGrace     Duration `toml:"shutdown_grace"`
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	IdleTimeout       Duration `toml:"idle_timeout"`
	Hooks             []string `toml:"hooks"`

	Log     Log                `toml:"log"`
	Limits  Limits             `toml:"limits"`
	Metrics Metrics            `toml:"metrics"`
	Index   Index              `toml:"index"`
	Cluster Cluster            `toml:"cluster"`
	TLS     TLS                `toml:"tls"`
	Kazoo   Kazoo              `toml:"kazoo"`
	DAV     DAV                `toml:"dav"`
	UI      UI                 `toml:"ui"`
	Users   []User             `toml:"users"`
	Quotas  []Quota            `toml:"quota"`
	Plugins Plugins            `toml:"plugins"`
	Storage Storage            `toml:"storage"`
	Plugin  map[string]Plugin  `toml:"plugin"`
	Hook    map[string]HookCfg `toml:"hook"`

	// Retention rules, legal holds and the sweeper of attachd serve
	// (docs/retention.md); package retention validates them.
	Retention      []retention.Rule `toml:"retention"`
	Hold           []retention.Hold `toml:"hold"`
	RetentionSweep retention.Sweep  `toml:"retention_sweep"`
}

// Log configures the log.
type Log struct {
	Format string `toml:"format"` // "text" or "json"
	Level  string `toml:"level"`  // "debug", "info", "warn", "error"
	Access bool   `toml:"access"` // one line per request
}

// Limits bound what one client can make the server hold: connections,
// uploads, slow bodies, failed logins, XML and stored properties. Each has a
// default; docs/security.md lists them with the attack each one stops.
type Limits struct {
	MaxConnections  int      `toml:"max_connections"`   // open client connections at once
	MaxUploads      int      `toml:"max_uploads"`       // request bodies being stored at once; more get 503
	BodyIdleTimeout Duration `toml:"body_idle_timeout"` // a body read that receives nothing this long cuts the upload
	MinBodyRate     Size     `toml:"min_body_rate"`     // bytes/s a body must average (after body_idle_timeout)
	AuthFailures    int      `toml:"auth_failures"`     // failed logins per client address and per user name per minute; more get 429
	MaxXMLBody      Size     `toml:"max_xml_body"`      // PROPFIND, PROPPATCH and LOCK bodies
	MaxXMLDepth     int      `toml:"max_xml_depth"`     // element nesting in those bodies
	MaxProps        int      `toml:"max_props"`         // dead properties per object or folder
	MaxPropsBytes   Size     `toml:"max_props_bytes"`   // their total size per object or folder
	MaxFetchMeta    Size     `toml:"max_fetch_meta"`    // Kazoo fetch query metadata kept per object
}

// Index says where the index lives (docs/cluster.md): empty, the embedded
// SQLite database in the data directory (one node); a postgres:// URL, a
// PostgreSQL database that every node of a cluster shares.
type Index struct {
	URL string `toml:"url"`
	// BlobGrace is how long a replaced or deleted object's blob stays in
	// the backend once no object names it, so that a node still streaming
	// the old version finishes (docs/cluster.md). Shared index only.
	BlobGrace Duration `toml:"blob_grace"`
}

func (x Index) validate() error {
	if x.BlobGrace < Duration(time.Minute) {
		return keyErr("index.blob_grace", "want 1m or more (longer than any download of an old version takes), got %v", time.Duration(x.BlobGrace))
	}
	if x.URL == "" {
		return nil
	}
	u, err := url.Parse(x.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return keyErr("index.url", "want a PostgreSQL URL, e.g. \"postgres://attachd:PASSWORD@db.example:5432/attachd\", got %q", redactURL(x.URL))
	}
	return nil
}

// redactURL hides the password of a URL, or all of it if it does not parse.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Cluster lets nodes that share one index and one backend reach each other
// (docs/cluster.md): a node streams to its peers the objects it has accepted
// but not yet moved to the backend.
type Cluster struct {
	AdvertiseURL string `toml:"advertise_url"` // how peers reach this node, e.g. "http://10.0.0.5:37635"
	Secret       string `toml:"secret"`        // shared by every node; authenticates node-to-node requests
}

func (c Cluster) validate() error {
	if c.AdvertiseURL == "" {
		if c.Secret != "" {
			return keyErr("cluster.advertise_url", "must be set with cluster.secret")
		}
		return nil
	}
	u, err := url.Parse(c.AdvertiseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return keyErr("cluster.advertise_url", "want this node's base URL, e.g. \"http://10.0.0.5:37635\", got %q", c.AdvertiseURL)
	}
	if len(c.Secret) < 16 {
		return keyErr("cluster.secret", "must be set, 16 characters or more, the same on every node")
	}
	return nil
}

// TLS serves HTTPS with a certificate and key in PEM files, and asks
// clients for a certificate of client_ca_file if it is set. A reload
// (SIGHUP) reads the files again; so does a change of the files.
type TLS struct {
	CertFile      string   `toml:"cert_file"`
	KeyFile       string   `toml:"key_file"`
	ClientCAFile  string   `toml:"client_ca_file"`
	WatchInterval Duration `toml:"watch_interval"` // how often the files are checked for a change; 0: on SIGHUP only
}

// Enabled reports whether attachd serves HTTPS.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Files returns the PEM files.
func (t TLS) Files() tlsconf.Files {
	return tlsconf.Files{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile}
}

// validate checks that the files are both set or both unset, and that they
// load: a server that would fail its first handshake does not start.
func (t TLS) validate() error {
	if t.WatchInterval < 0 {
		return keyErr("tls.watch_interval", "must not be negative (0 turns the check off)")
	}
	switch {
	case t.CertFile == "" && t.KeyFile == "":
		if t.ClientCAFile != "" {
			return keyErr("tls.client_ca_file", "needs tls.cert_file and tls.key_file: client certificates are asked for over TLS")
		}
		return nil
	case t.CertFile == "":
		return keyErr("tls.cert_file", "must be set with tls.key_file")
	case t.KeyFile == "":
		return keyErr("tls.key_file", "must be set with tls.cert_file")
	}
	if err := tlsconf.Load(t.Files()); err != nil {
		var fe *tlsconf.FileError
		if errors.As(err, &fe) {
			return keyErr("tls."+fe.Field, "%q: %v", fe.Path, fe.Err)
		}
		return keyErr("tls", "%v", err)
	}
	return nil
}

// Metrics protects /metrics.
type Metrics struct {
	AllowFrom []string `toml:"allow_from"` // addresses or CIDRs that may scrape; empty: loopback only
	User      string   `toml:"user"`       // if set, scraping also needs this [[users]] login
}

// The Kazoo route's and the WebDAV drive's tables are their packages' own
// types, which validate their values as they are decoded (kazoo.Config,
// dav.Config); so is the write mode (store.WriteMode).
type (
	Kazoo = kazoo.Config
	DAV   = dav.Config
)

// UI configures the voicemail browser at /ui/ (docs/ui.md).
type UI struct {
	Enabled     bool     `toml:"enabled"`      // serve it
	SessionIdle Duration `toml:"session_idle"` // a session unused this long ends
	SessionMax  Duration `toml:"session_max"`  // a session this old ends, used or not
	PageSize    int      `toml:"page_size"`    // messages per page of the inbox
}

// MaxPageSize bounds [ui] page_size: a page is read and rendered whole.
const MaxPageSize = 500

func (u UI) validate() error {
	switch {
	case u.SessionIdle <= 0:
		return keyErr("ui.session_idle", "must be positive, got %v", time.Duration(u.SessionIdle))
	case u.SessionMax < u.SessionIdle:
		return keyErr("ui.session_max", "must be at least ui.session_idle (%v), got %v", time.Duration(u.SessionIdle), time.Duration(u.SessionMax))
	case u.PageSize < 1 || u.PageSize > MaxPageSize:
		return keyErr("ui.page_size", "want 1 to %d, got %d", MaxPageSize, u.PageSize)
	}
	return nil
}

// User is one login, for Kazoo and WebDAV alike.
type User struct {
	Name         string `toml:"name"`
	PasswordHash string `toml:"password_hash"`
	Root         string `toml:"root"`
	Permissions  string `toml:"permissions"`   // "r" or "rw"
	QuotaBytes   Size   `toml:"quota_bytes"`   // most bytes below root; 0: no limit
	QuotaObjects int64  `toml:"quota_objects"` // most objects below root; 0: no limit
}

// Quota limits the bytes and objects below a folder ([[quota]]).
type Quota struct {
	Prefix  string `toml:"prefix"`  // a path like a user's root
	Bytes   Size   `toml:"bytes"`   // 0: no limit
	Objects int64  `toml:"objects"` // 0: no limit
}

// Plugins says where plugin executables are.
type Plugins struct {
	Dir string `toml:"dir"`
}

// Storage selects where object bytes live.
type Storage struct {
	Backend   string          `toml:"backend"`    // store.LocalBackend or a storage plugin's name
	WriteMode store.WriteMode `toml:"write_mode"` // store.WriteSpool or store.WriteThrough
	ReadCache Size            `toml:"read_cache"` // bytes of blob copies kept in data_dir/cache for reads, with a plugin backend; 0: none
}

// Remote reports whether a storage plugin holds the bytes.
func (s Storage) Remote() bool { return s.Backend != store.LocalBackend }

// Plugin pins and configures one plugin.
type Plugin struct {
	SHA256  string         `toml:"sha256"`
	Config  map[string]any `toml:"config"`
	Secrets map[string]any `toml:"secrets"`
}

// HookCfg tunes the delivery of one hook.
type HookCfg struct {
	Concurrency int      `toml:"concurrency"`
	Timeout     Duration `toml:"timeout"`
	MaxAttempts int      `toml:"max_attempts"`
	MaxAge      Duration `toml:"max_age"`
	MinBackoff  Duration `toml:"min_backoff"`
	MaxBackoff  Duration `toml:"max_backoff"`
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		Listen:            "127.0.0.1:37635",
		AllowFrom:         []string{},
		TrustedProxies:    []string{},
		Hooks:             []string{},
		DataDir:           "./attachd-data",
		MaxBody:           4 << 30,
		ShutdownGrace:     Duration(30 * time.Second),
		ReadHeaderTimeout: Duration(10 * time.Second),
		IdleTimeout:       Duration(120 * time.Second),
		Log:               Log{Format: "text", Level: "info", Access: true},
		Limits: Limits{
			MaxConnections:  4096,
			MaxUploads:      512,
			BodyIdleTimeout: Duration(30 * time.Second),
			MinBodyRate:     1 << 10,
			AuthFailures:    10,
			MaxXMLBody:      1 << 20,
			MaxXMLDepth:     32,
			MaxProps:        128,
			MaxPropsBytes:   64 << 10,
			MaxFetchMeta:    16 << 10,
		},
		Metrics: Metrics{AllowFrom: []string{}},
		Index:   Index{BlobGrace: Duration(10 * time.Minute)},
		TLS:     TLS{WatchInterval: Duration(5 * time.Second)},
		Kazoo:   kazoo.DefaultConfig(),
		DAV:     dav.DefaultConfig(),
		UI:      UI{Enabled: true, SessionIdle: Duration(30 * time.Minute), SessionMax: Duration(12 * time.Hour), PageSize: 50},
		Storage: Storage{Backend: store.LocalBackend, WriteMode: store.WriteSpool, ReadCache: 1 << 30},
	}
}

// Load reads the file at path over the defaults and validates the result.
// Errors name the file, and the line and key where one is known.
func Load(path string) (Config, error) {
	c := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		// Syntax errors, and values our types refuse (a Duration, a Size),
		// come as a ParseError with the key and its position.
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if pe.LastKey != "" {
				return c, fmt.Errorf("%s:%d: %s: %s", path, pe.Position.Line, pe.LastKey, pe.Message)
			}
			return c, fmt.Errorf("%s:%d: %s", path, pe.Position.Line, pe.Message)
		}
		// Type mismatches are only formatted: "toml: line N (last key "k"): msg".
		if m := decodeErrRe.FindStringSubmatch(err.Error()); m != nil {
			return c, fmt.Errorf("%s:%s: %s: %s", path, m[1], m[2], m[3])
		}
		return c, fmt.Errorf("%s: %w", path, err)
	}
	for _, k := range md.Undecoded() {
		// A plugin's own table is the plugin's to validate (it is handed over by Configure).
		if len(k) >= 3 && k[0] == "plugin" && (k[2] == "config" || k[2] == "secrets") {
			continue
		}
		return c, fmt.Errorf("%s: unknown key %q", at(path, lineOf(data, k, 0)), k.String())
	}
	if err := c.Validate(); err != nil {
		var ke *KeyError
		if errors.As(err, &ke) {
			return c, fmt.Errorf("%s: %w", at(path, lineOf(data, strings.Split(ke.Key, "."), ke.Elem)), err)
		}
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// at formats a position: FILE:LINE, or FILE when the line is unknown.
func at(path string, line int) string {
	if line <= 0 {
		return path
	}
	return fmt.Sprintf("%s:%d", path, line)
}

var headerRe = regexp.MustCompile(`^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?`)

// lineOf finds the line on which key is set, or 0. In an array of tables
// ([[users]]) it looks in the elem-th table (from 1); elem 0 means the
// first. BurntSushi/toml keeps the positions of keys private, and one per
// key name, not per element, so look for the key in its table.
func lineOf(data []byte, key toml.Key, elem int) int {
	if len(key) == 0 {
		return 0
	}
	table := strings.Join(key[:len(key)-1], ".")
	keyRe := regexp.MustCompile(`^\s*["']?` + regexp.QuoteMeta(key[len(key)-1]) + `["']?\s*=`)
	current, seen := "", 0
	for i, line := range strings.Split(string(data), "\n") {
		if m := headerRe.FindStringSubmatch(line); m != nil {
			// [ hook . "webhook" ] is [hook.webhook].
			current = strings.NewReplacer(" ", "", "\t", "", `"`, "", "'", "").Replace(m[2])
			if current == table && m[1] == "[[" {
				seen++
			}
			if current == key.String() {
				return i + 1 // the key is itself a table
			}
			continue
		}
		if current == table && keyRe.MatchString(line) && (elem == 0 || seen == elem) {
			return i + 1
		}
	}
	return 0
}

// KeyError is a validation error about one key.
type KeyError struct {
	Key  string // dotted, as in the file: "limits.max_uploads"
	Elem int    // for a key of an array of tables ([[users]]), which one, from 1
	Msg  string
}

func (e *KeyError) Error() string { return fmt.Sprintf("%s: %s", e.Key, e.Msg) }

func keyErr(key, format string, args ...any) error {
	return &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// userErr is a KeyError about a key of the i-th [[users]] table (from 0).
func userErr(i int, key, format string, args ...any) error {
	return &KeyError{Key: "users." + key, Elem: i + 1, Msg: fmt.Sprintf(format, args...)}
}

var decodeErrRe = regexp.MustCompile(`^toml: line (\d+) \(last key "(.*?)"\): (.*)$`)

var pluginName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Validate checks values that the TOML types alone do not constrain.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return keyErr("listen", "want host:port, got %q", c.Listen)
	}
	if c.DataDir == "" {
		return keyErr("data_dir", "must not be empty")
	}
	if c.MaxBody <= 0 {
		return keyErr("max_body", "must be positive")
	}
	for i, s := range c.AllowFrom {
		if _, err := netip.ParsePrefix(s); err != nil {
			if _, err2 := netip.ParseAddr(s); err2 != nil {
				return keyErr("allow_from", "entry %d: %q is not a CIDR or an address", i+1, s)
			}
		}
	}
	if _, err := forwarded.Parse(c.TrustedProxies); err != nil {
		return keyErr("trusted_proxies", "%v", err)
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	if c.Cluster.AdvertiseURL != "" && !c.Storage.Remote() {
		return keyErr("cluster.advertise_url", "a cluster needs a storage backend every node shares: set [storage] backend")
	}
	if err := c.Index.validate(); err != nil {
		return err
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	if c.Index.URL != "" && !c.Storage.Remote() {
		return keyErr("index.url", "a shared index needs a storage backend every node shares: set [storage] backend")
	}
	if c.Index.URL != "" && c.Storage.WriteMode != store.WriteThrough && c.Cluster.AdvertiseURL == "" {
		return keyErr("index.url", "in spool mode, nodes that share an index read each other's spools: set [cluster] advertise_url and secret")
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return keyErr("public_url", "want an absolute http(s) URL, got %q", c.PublicURL)
		}
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"shutdown_grace", c.ShutdownGrace}, {"read_header_timeout", c.ReadHeaderTimeout}, {"idle_timeout", c.IdleTimeout}} {
		if d.v < 0 {
			return keyErr(d.key, "must not be negative, got %v", time.Duration(d.v))
		}
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	for i, s := range c.Metrics.AllowFrom {
		if _, err := netip.ParsePrefix(s); err != nil {
			if _, err2 := netip.ParseAddr(s); err2 != nil {
				return keyErr("metrics.allow_from", "entry %d: %q is not a CIDR or an address", i+1, s)
			}
		}
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return keyErr("log.format", `want "text" or "json", got %q`, c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return keyErr("log.level", `want "debug", "info", "warn" or "error", got %q`, c.Log.Level)
	}
	if err := c.Kazoo.Validate(); err != nil {
		key, msg, _ := strings.Cut(err.Error(), ": ")
		return keyErr("kazoo."+key, "%s", msg)
	}
	if err := c.UI.validate(); err != nil {
		return err
	}
	if err := c.validateUsers(); err != nil {
		return err
	}
	if err := c.validateQuotas(); err != nil {
		return err
	}
	if err := c.validateRetention(); err != nil {
		return err
	}
	return c.validatePlugins()
}

// validateUsers checks the [[users]] tables and fills in their defaults.
func (c *Config) validateUsers() error {
	seen := map[string]bool{}
	for i := range c.Users {
		u := &c.Users[i]
		if u.Name == "" || strings.ContainsAny(u.Name, ":") {
			return userErr(i, "name", "user %d: name must be non-empty and contain no ':'", i+1)
		}
		if seen[u.Name] {
			return userErr(i, "name", "user %q is defined twice", u.Name)
		}
		seen[u.Name] = true
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			return userErr(i, "password_hash", "user %q: want a bcrypt hash from `attachd hash-password`", u.Name)
		}
		if u.Permissions == "" {
			u.Permissions = "r"
		}
		if u.Permissions != "r" && u.Permissions != "rw" {
			return userErr(i, "permissions", `user %q: want "r" or "rw", got %q`, u.Name, u.Permissions)
		}
		if u.Root == "" {
			u.Root = "/"
		}
		if err := checkRoot(u.Root); err != nil {
			return userErr(i, "root", "user %q: %v", u.Name, err)
		}
	}
	if n := c.Metrics.User; n != "" && !seen[n] {
		return keyErr("metrics.user", "%q is not the name of a [[users]] entry", n)
	}
	return nil
}

// validateQuotas checks the quotas of [[users]] and [[quota]]: one per
// folder at most.
func (c *Config) validateQuotas() error {
	seen := map[string]bool{}
	for i, u := range c.Users {
		if u.QuotaBytes < 0 {
			return userErr(i, "quota_bytes", "user %q: must not be negative", u.Name)
		}
		if u.QuotaObjects < 0 {
			return userErr(i, "quota_objects", "user %q: must not be negative", u.Name)
		}
		if u.QuotaBytes > 0 || u.QuotaObjects > 0 {
			k, _ := store.CanonicalPath(u.Root)
			if seen[k] {
				return userErr(i, "quota_bytes", "user %q: root %q already has a quota", u.Name, u.Root)
			}
			seen[k] = true
		}
	}
	for i, q := range c.Quotas {
		qErr := func(key, format string, args ...any) error {
			return &KeyError{Key: "quota." + key, Elem: i + 1, Msg: fmt.Sprintf(format, args...)}
		}
		if err := checkRoot(q.Prefix); err != nil {
			return qErr("prefix", "%s", strings.Replace(err.Error(), "root", "prefix", 1))
		}
		if q.Bytes < 0 {
			return qErr("bytes", "must not be negative")
		}
		if q.Objects < 0 {
			return qErr("objects", "must not be negative")
		}
		if q.Bytes == 0 && q.Objects == 0 {
			return qErr("prefix", "quota on %q: set bytes, objects or both", q.Prefix)
		}
		k, _ := store.CanonicalPath(q.Prefix)
		if seen[k] {
			return qErr("prefix", "%q already has a quota", q.Prefix)
		}
		seen[k] = true
	}
	return nil
}

// StoreQuotas returns the quotas of [[users]] and [[quota]], validated, for
// the store: each named as configured.
func (c *Config) StoreQuotas() []store.Quota {
	var out []store.Quota
	add := func(name string, bytes Size, objects int64) {
		k, _ := store.CanonicalPath(name)
		out = append(out, store.Quota{Name: name, Prefix: k, Bytes: int64(bytes), Objects: objects})
	}
	for _, u := range c.Users {
		if u.QuotaBytes > 0 || u.QuotaObjects > 0 {
			add(u.Root, u.QuotaBytes, u.QuotaObjects)
		}
	}
	for _, q := range c.Quotas {
		add(q.Prefix, q.Bytes, q.Objects)
	}
	return out
}

// validateRetention checks the [[retention]] and [[hold]] tables (package
// retention's own check) and [retention_sweep].
func (c *Config) validateRetention() error {
	if err := retention.Validate(c.Retention, c.Hold); err != nil {
		var fe *retention.FieldError
		if errors.As(err, &fe) {
			return &KeyError{Key: fe.Table + "." + fe.Key, Elem: fe.Elem, Msg: fmt.Sprintf("[[%s]] %d: %s", fe.Table, fe.Elem, fe.Msg)}
		}
		return keyErr("retention", "%v", err)
	}
	if r := c.RetentionSweep.Rate; math.IsNaN(r) || math.IsInf(r, 0) {
		return keyErr("retention_sweep.rate", "want a number of deletes per second, got %v", r)
	}
	if c.RetentionSweep.Interval < 0 {
		return keyErr("retention_sweep.interval", "must not be negative")
	}
	return nil
}

// validatePlugins checks the storage backend, the hooks and the plugin
// tables they name.
func (c *Config) validatePlugins() error {
	if c.Storage.Backend == "" {
		c.Storage.Backend = store.LocalBackend
	}
	if c.Storage.ReadCache < 0 {
		return keyErr("storage.read_cache", "must be 0 (no copies) or more, got %d", c.Storage.ReadCache)
	}
	if c.Storage.ReadCache > 0 && c.Storage.ReadCache < 8*readcache.MinCost {
		return keyErr("storage.read_cache", "want 0 (no copies) or at least %d bytes (one copy takes at most an eighth), got %d", 8*readcache.MinCost, c.Storage.ReadCache)
	}
	if c.Storage.Remote() {
		if !pluginName.MatchString(c.Storage.Backend) {
			return keyErr("storage.backend", "%q is not a plugin name", c.Storage.Backend)
		}
		if _, ok := c.Plugin[c.Storage.Backend]; !ok {
			return keyErr("storage.backend", "plugin %q has no [plugin.%s] table with its sha256", c.Storage.Backend, c.Storage.Backend)
		}
		if c.Plugins.Dir == "" {
			return keyErr("plugins.dir", "must be set to use storage backend %q", c.Storage.Backend)
		}
	}
	for _, h := range c.Hooks {
		if _, ok := c.Plugin[h]; !ok {
			return keyErr("hooks", "hook %q has no [plugin.%s] table with its sha256", h, h)
		}
		if c.Plugins.Dir == "" {
			return keyErr("plugins.dir", "must be set to use hook %q", h)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Plugin)) {
		p := c.Plugin[name]
		if !pluginName.MatchString(name) {
			return keyErr("plugin."+name, "%q is not a valid plugin name (lower-case letters, digits, '-', '_')", name)
		}
		if len(p.SHA256) != 64 || strings.Trim(strings.ToLower(p.SHA256), "0123456789abcdef") != "" {
			return keyErr("plugin."+name+".sha256", "want the 64 hex digits printed by `attachd plugins hash FILE`")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Hook)) {
		if !slices.Contains(c.Hooks, name) {
			return keyErr("hook."+name, "no hook %q in hooks = %q: a typo, or add it there", name, c.Hooks)
		}
		if err := c.Hook[name].validate("hook." + name + "."); err != nil {
			return err
		}
	}
	return nil
}

// validate refuses negative limits; 0 turns most of them off.
func (l Limits) validate() error {
	for _, v := range []struct {
		key string
		v   int64
	}{
		{"max_connections", int64(l.MaxConnections)},
		{"max_uploads", int64(l.MaxUploads)},
		{"body_idle_timeout", int64(l.BodyIdleTimeout)},
		{"min_body_rate", int64(l.MinBodyRate)},
		{"auth_failures", int64(l.AuthFailures)},
		{"max_xml_body", int64(l.MaxXMLBody)},
		{"max_xml_depth", int64(l.MaxXMLDepth)},
		{"max_props", int64(l.MaxProps)},
		{"max_props_bytes", int64(l.MaxPropsBytes)},
		{"max_fetch_meta", int64(l.MaxFetchMeta)},
	} {
		if v.v < 0 {
			return keyErr("limits."+v.key, "must not be negative")
		}
	}
	return nil
}

// validate refuses negative settings; 0 means the default (HookSettings).
func (h HookCfg) validate(prefix string) error {
	for _, v := range []struct {
		key string
		v   int64
	}{
		{"concurrency", int64(h.Concurrency)},
		{"timeout", int64(h.Timeout)},
		{"max_attempts", int64(h.MaxAttempts)},
		{"max_age", int64(h.MaxAge)},
		{"min_backoff", int64(h.MinBackoff)},
		{"max_backoff", int64(h.MaxBackoff)},
	} {
		if v.v < 0 {
			return keyErr(prefix+v.key, "must not be negative")
		}
	}
	return nil
}

// checkRoot checks a user's root: an absolute path of the store's tree, in
// the escaped form of a URL path, that names itself (no "." or ".." segments,
// no empty ones but a final slash).
func checkRoot(root string) error {
	if !strings.HasPrefix(root, "/") {
		return fmt.Errorf("root %q must start with '/' (\"/\" is the whole store)", root)
	}
	segs := strings.Split(strings.TrimSuffix(root[1:], "/"), "/")
	if root == "/" {
		segs = nil
	}
	for _, seg := range segs {
		dec, err := url.PathUnescape(seg)
		switch {
		case seg == "":
			return fmt.Errorf("root %q has an empty segment", root)
		case err != nil:
			return fmt.Errorf("root %q: bad escape in %q", root, seg)
		case dec == "." || dec == "..":
			return fmt.Errorf("root %q may not contain %q", root, dec)
		case strings.ContainsAny(dec, "\\\x00"):
			return fmt.Errorf("root %q contains a backslash or NUL", root)
		}
	}
	return nil
}

// Redacted returns c with every value of [plugin.*.secrets] and the
// cluster secret replaced by "REDACTED", for printing. c itself is not changed.
func (c Config) Redacted() Config {
	if c.Cluster.Secret != "" {
		c.Cluster.Secret = "REDACTED"
	}
	if c.Index.URL != "" {
		c.Index.URL = redactURL(c.Index.URL)
	}
	if len(c.Plugin) == 0 {
		return c
	}
	plugins := make(map[string]Plugin, len(c.Plugin))
	for name, p := range c.Plugin {
		plugins[name] = p.redacted()
	}
	c.Plugin = plugins
	return c
}

func (p Plugin) redacted() Plugin {
	if len(p.Secrets) > 0 {
		s := make(map[string]any, len(p.Secrets))
		for k := range p.Secrets {
			s[k] = "REDACTED"
		}
		p.Secrets = s
	}
	return p
}

// LogValue keeps the secrets out of any log line a Plugin is put in.
func (p Plugin) LogValue() slog.Value {
	type plain Plugin // without this method, which slog would call again
	return slog.AnyValue(plain(p.redacted()))
}

// Size is a number of bytes: an integer, or a string with a unit ("4GiB", "100MB").
type Size int64

// UnmarshalTOML accepts an integer or a string with a unit.
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		*s = Size(v)
		return nil
	case string:
		n, err := ParseSize(v)
		*s = Size(n)
		return err
	}
	return fmt.Errorf("want a number of bytes or a string like \"4GiB\", got %T", v)
}

// MarshalText prints the size in bytes.
func (s Size) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }

// ParseSize parses "123", "10KiB", "4GiB", "100MB" (SI and binary units).
func ParseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := v, ""
	if i >= 0 {
		num, unit = v[:i], strings.TrimSpace(v[i:])
	}
	mult := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[unit]
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 {
		return 0, fmt.Errorf("bad size %q: want e.g. 1048576, \"100MB\" or \"4GiB\"", v)
	}
	return int64(f * mult), nil
}

// Duration is a time.Duration written as a string ("30s", "2m").
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q: want e.g. \"30s\" or \"2m\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText prints the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Encode writes c as TOML: the effective configuration, defaults included.
func (c Config) Encode() ([]byte, error) {
	var b bytes.Buffer
	err := toml.NewEncoder(&b).Encode(c)
	return b.Bytes(), err
}

// HookSettings returns the delivery settings of hook name, defaults filled in.
func (c *Config) HookSettings(name string) HookCfg {
	h := c.Hook[name]
	if h.Concurrency <= 0 {
		h.Concurrency = 2
	}
	if h.Timeout <= 0 {
		h.Timeout = Duration(time.Minute)
	}
	if h.MaxAttempts <= 0 {
		h.MaxAttempts = 24
	}
	if h.MaxAge <= 0 {
		h.MaxAge = Duration(7 * 24 * time.Hour)
	}
	if h.MinBackoff <= 0 {
		h.MinBackoff = Duration(2 * time.Second)
	}
	if h.MaxBackoff <= 0 {
		h.MaxBackoff = Duration(10 * time.Minute)
	}
	return h
}
