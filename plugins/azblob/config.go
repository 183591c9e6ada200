package main

import (
	"context"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/attachd/attachd/plugins/sdk"
)

// config is the [plugin.azblob.config] table; any key may instead be set in
// [plugin.azblob.secrets] (account_key, connection_string and sas_url
// belong there). Set exactly one way to authenticate: account_url with
// account_name and account_key (shared key), or connection_string, or
// sas_url.
type config struct {
	AccountURL       string `json:"account_url"` // https://<account>.blob.core.windows.net
	AccountName      string `json:"account_name"`
	AccountKey       string `json:"account_key"`
	ConnectionString string `json:"connection_string"`
	// SASURL is an account or container URL with a SAS token; a container
	// URL names the container itself.
	SASURL    string `json:"sas_url"`
	Container string `json:"container"`  // created if missing (with the rights to)
	BlockSize int    `json:"block_size"` // bytes per staged block; default 4 MiB
}

const (
	defaultBlockSize = 4 << 20
	maxBlockSize     = 100 << 20 // leaves memory bounded: two blocks stage at once
)

// Configure implements sdk.Configurer. It builds the client without calling
// Azure: an unreachable account must not stop attachd from starting.
func (b *backend) Configure(ctx context.Context, c sdk.Config) error {
	var cfg config
	if err := c.Decode(&cfg); err != nil {
		return err
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = defaultBlockSize
	}
	if cfg.BlockSize < 64<<10 || cfg.BlockSize > maxBlockSize {
		return sdk.ConfigError("block_size", "want 65536 to %d bytes, got %d", maxBlockSize, cfg.BlockSize)
	}
	modes := 0
	for _, set := range []bool{cfg.AccountURL != "" || cfg.AccountName != "" || cfg.AccountKey != "", cfg.ConnectionString != "", cfg.SASURL != ""} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		return sdk.ConfigError("account_url", "set exactly one of: account_url with account_name and account_key; connection_string; sas_url")
	}
	opts := &container.ClientOptions{ClientOptions: policy.ClientOptions{
		// Fail within seconds when Azure is down: attachd's spool retries
		// later, and a call stuck in retries holds a Kazoo upload.
		Retry: policy.RetryOptions{MaxRetries: 3, RetryDelay: 500 * time.Millisecond, MaxRetryDelay: 5 * time.Second},
		// No telemetry header naming this host's SDK version to Microsoft.
		Telemetry: policy.TelemetryOptions{Disabled: true},
	}}
	var client *container.Client
	var err error
	switch {
	case cfg.ConnectionString != "":
		client, err = connectionStringClient(&cfg, opts)
	case cfg.SASURL != "":
		client, err = sasClient(&cfg, opts)
	default:
		client, err = sharedKeyClient(&cfg, opts)
	}
	if err != nil {
		return err
	}
	b.setup(client, cfg.BlockSize, cfg.SASURL != "")
	sdk.Logger().Info("configured", "container", cfg.Container, "url", redact(client.URL()))
	return nil
}

func connectionStringClient(cfg *config, opts *container.ClientOptions) (*container.Client, error) {
	if cfg.Container == "" {
		return nil, sdk.ConfigError("container", "must be set")
	}
	client, err := container.NewClientFromConnectionString(cfg.ConnectionString, cfg.Container, opts)
	if err != nil {
		return nil, sdk.ConfigError("connection_string", "%v", err)
	}
	return client, nil
}

// sasClient reaches the container a SAS URL names, or cfg.Container in the
// account it names; cfg.Container is set to the container used.
func sasClient(cfg *config, opts *container.ClientOptions) (*container.Client, error) {
	parts, err := azblob.ParseURL(cfg.SASURL)
	if err != nil || parts.SAS.Signature() == "" {
		return nil, sdk.ConfigError("sas_url", "want a URL with a SAS token (…?sv=…&sig=…)")
	}
	switch {
	case parts.ContainerName == "" && cfg.Container == "":
		return nil, sdk.ConfigError("container", "must be set, or sas_url must name the container")
	case parts.ContainerName == "":
		parts.ContainerName = cfg.Container
	case cfg.Container != "" && cfg.Container != parts.ContainerName:
		return nil, sdk.ConfigError("container", "%q differs from the container %q in sas_url", cfg.Container, parts.ContainerName)
	}
	parts.BlobName = ""
	cfg.Container = parts.ContainerName
	client, err := container.NewClientWithNoCredential(parts.String(), opts)
	if err != nil {
		return nil, sdk.ConfigError("sas_url", "%v", err)
	}
	return client, nil
}

func sharedKeyClient(cfg *config, opts *container.ClientOptions) (*container.Client, error) {
	switch {
	case cfg.AccountURL == "":
		return nil, sdk.ConfigError("account_url", "must be set with account_name and account_key")
	case cfg.AccountName == "":
		return nil, sdk.ConfigError("account_name", "must be set with account_url and account_key")
	case cfg.AccountKey == "":
		return nil, sdk.ConfigError("account_key", "must be set with account_url and account_name")
	case cfg.Container == "":
		return nil, sdk.ConfigError("container", "must be set")
	}
	cred, err := azblob.NewSharedKeyCredential(cfg.AccountName, cfg.AccountKey)
	if err != nil {
		return nil, sdk.ConfigError("account_key", "%v", err)
	}
	u := strings.TrimRight(cfg.AccountURL, "/") + "/" + cfg.Container
	client, err := container.NewClientWithSharedKeyCredential(u, cred, opts)
	if err != nil {
		return nil, sdk.ConfigError("account_url", "%v", err)
	}
	return client, nil
}

// redact drops a SAS token from a URL before it is logged.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}
