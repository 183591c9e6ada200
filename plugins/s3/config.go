package main

import (
	"context"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/attachd/attachd/plugins/sdk"
)

// config is the [plugin.s3.config] table; any key may instead be set in
// [plugin.s3.secrets] (secret_access_key belongs there).
type config struct {
	// Endpoint is host[:port], spoken to over HTTPS, or a URL:
	// https://host[:port] or http://host[:port] (plain HTTP only when
	// written so). No path. Default s3.amazonaws.com.
	Endpoint string `json:"endpoint"`
	// Region is the bucket's region; empty: asked of the server (MinIO:
	// us-east-1).
	Region string `json:"region"`
	Bucket string `json:"bucket"` // created if missing (with the rights to)
	// Prefix is a folder inside the bucket that holds the blobs ("" for the
	// whole bucket); a "/" is added if missing.
	Prefix string `json:"prefix"`
	// PathStyle: true addresses the bucket as endpoint/bucket (MinIO and
	// most S3-compatible stores), false as bucket.endpoint (virtual-hosted);
	// unset: virtual-hosted for Amazon's and Aliyun's endpoints, path-style
	// for any other.
	PathStyle       *bool  `json:"path_style"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	PartSize        int    `json:"part_size"` // bytes per multipart part; default 8 MiB
}

const (
	defaultEndpoint = "s3.amazonaws.com"
	defaultPartSize = 8 << 20
	minPartSize     = 5 << 20   // S3's smallest part but the last
	maxPartSize     = 100 << 20 // leaves memory bounded: two parts per upload
	// inFlight is how many parts of one upload are sent at once while the
	// next fills: memory per upload is at most inFlight+1 parts. One part
	// sending while the next arrives keeps both sides busy; more only adds
	// memory (and was no faster against MinIO).
	inFlight = 1
)

// Configure implements sdk.Configurer. It builds the client without calling
// S3: an unreachable endpoint must not stop attachd from starting.
func (b *backend) Configure(ctx context.Context, c sdk.Config) error {
	var cfg config
	if err := c.Decode(&cfg); err != nil {
		return err
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = defaultPartSize
	}
	if cfg.PartSize < minPartSize || cfg.PartSize > maxPartSize {
		return sdk.ConfigError("part_size", "want %d to %d bytes, got %d", minPartSize, maxPartSize, cfg.PartSize)
	}
	host, secure, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return err
	}
	switch {
	case cfg.Bucket == "":
		return sdk.ConfigError("bucket", "must be set")
	case cfg.AccessKeyID == "":
		return sdk.ConfigError("access_key_id", "must be set, with secret_access_key")
	case cfg.SecretAccessKey == "":
		return sdk.ConfigError("secret_access_key", "must be set (in [plugin.s3.secrets]), with access_key_id")
	}
	if err := s3utils.CheckValidBucketNameStrict(cfg.Bucket); err != nil {
		return sdk.ConfigError("bucket", "%q: %v", cfg.Bucket, err)
	}
	prefix, err := cleanPrefix(cfg.Prefix)
	if err != nil {
		return err
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle != nil {
		lookup = minio.BucketLookupDNS
		if *cfg.PathStyle {
			lookup = minio.BucketLookupPath
		}
	}
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return err
	}
	// Fail within seconds when S3 is down: attachd's spool retries later,
	// and a call stuck connecting holds a Kazoo upload.
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	client, err := minio.NewCore(host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:       secure,
		Transport:    tr,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   3,
	})
	if err != nil {
		return sdk.ConfigError("endpoint", "%v", err)
	}
	b.setup(client, cfg.Bucket, cfg.Region, prefix, cfg.PartSize)
	scheme := "https"
	if !secure {
		scheme = "http"
	}
	sdk.Logger().Info("configured", "endpoint", scheme+"://"+host, "bucket", cfg.Bucket, "prefix", prefix,
		"region", cfg.Region, "access_key_id", cfg.AccessKeyID, "part_size", cfg.PartSize)
	return nil
}

// parseEndpoint applies the one rule: HTTPS unless the endpoint is written
// as an http:// URL.
func parseEndpoint(ep string) (host string, secure bool, err error) {
	bad := func() error {
		return sdk.ConfigError("endpoint", "want host[:port] (HTTPS), https://host[:port] or http://host[:port], without a path; got %q", ep)
	}
	if ep == "" {
		return defaultEndpoint, true, nil
	}
	raw := ep
	if !strings.Contains(ep, "://") {
		raw = "https://" + ep
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", false, bad()
	}
	switch u.Scheme {
	case "https":
		return u.Host, true, nil
	case "http":
		return u.Host, false, nil
	}
	return "", false, bad()
}

// cleanPrefix checks the prefix as a blob name and ends it with "/".
func cleanPrefix(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	p = strings.TrimSuffix(p, "/")
	if err := checkName(p); err != nil || len(p) > 512 {
		return "", sdk.ConfigError("prefix", "want a folder such as \"attachd\" or \"a/b\": no leading \"/\", no empty, \".\" or \"..\" parts; got %q", p)
	}
	return p + "/", nil
}
