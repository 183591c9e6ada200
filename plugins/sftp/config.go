package main

import (
	"context"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/attachd/attachd/plugins/sdk"
)

// config is the [plugin.sftp.config] table; any key may instead be set in
// [plugin.sftp.secrets] (password, private_key_passphrase belong there).
type config struct {
	Address              string `json:"address"` // host:port; port 22 if omitted
	User                 string `json:"user"`
	PrivateKeyFile       string `json:"private_key_file"`
	PrivateKeyPassphrase string `json:"private_key_passphrase"`
	Password             string `json:"password"`
	// HostKey pins the server's key, as a line of authorized_keys or
	// known_hosts without the host names ("ssh-ed25519 AAAA…"). There is
	// no trust-on-first-use: an unpinned server could read every voicemail.
	HostKey string `json:"host_key"`
	Root    string `json:"root"`    // remote folder holding the blobs; default the login folder
	Timeout string `json:"timeout"` // dial and handshake timeout; default "15s"
}

// Configure implements sdk.Configurer: it checks the table and prepares the
// SSH client configuration. It does not connect: a server that is down now
// must not stop attachd from starting (uploads wait in its spool).
func (b *backend) Configure(ctx context.Context, c sdk.Config) error {
	var cfg config
	if err := c.Decode(&cfg); err != nil {
		return err
	}
	if cfg.Address == "" {
		return sdk.ConfigError("address", "must be set, e.g. \"sftp.example.com:22\"")
	}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		cfg.Address = net.JoinHostPort(cfg.Address, "22")
	}
	if cfg.User == "" {
		return sdk.ConfigError("user", "must be set")
	}
	timeout := 15 * time.Second
	if cfg.Timeout != "" {
		d, err := time.ParseDuration(cfg.Timeout)
		if err != nil || d <= 0 {
			return sdk.ConfigError("timeout", "want a duration like \"15s\", got %q", cfg.Timeout)
		}
		timeout = d
	}
	var auth []ssh.AuthMethod
	switch {
	case cfg.PrivateKeyFile != "" && cfg.Password != "":
		return sdk.ConfigError("password", "set either private_key_file or password, not both")
	case cfg.PrivateKeyFile != "":
		pem, err := os.ReadFile(cfg.PrivateKeyFile)
		if err != nil {
			return sdk.ConfigError("private_key_file", "%v", err)
		}
		var signer ssh.Signer
		if cfg.PrivateKeyPassphrase != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(cfg.PrivateKeyPassphrase))
		} else {
			signer, err = ssh.ParsePrivateKey(pem)
		}
		if err != nil {
			return sdk.ConfigError("private_key_file", "%s: %v", cfg.PrivateKeyFile, err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	case cfg.Password != "":
		auth = append(auth, ssh.Password(cfg.Password))
	default:
		return sdk.ConfigError("private_key_file", "set private_key_file or password")
	}
	if cfg.HostKey == "" {
		return sdk.ConfigError("host_key", "must pin the server's public key, e.g. the content of /etc/ssh/ssh_host_ed25519_key.pub")
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(cfg.HostKey)))
	if err != nil {
		return sdk.ConfigError("host_key", "want a public key line like \"ssh-ed25519 AAAA…\": %v", err)
	}
	root := "."
	if cfg.Root != "" {
		root = path.Clean(cfg.Root)
	}
	b.setup(cfg.Address, root, &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth,
		HostKeyCallback:   ssh.FixedHostKey(hostKey),
		HostKeyAlgorithms: hostKeyAlgorithms(hostKey),
		Timeout:           timeout,
	})
	sdk.Logger().Info("configured", "address", cfg.Address, "user", cfg.User, "root", cfg.Root)
	return nil
}

// hostKeyAlgorithms makes the server present the pinned key and not
// another of its keys; an RSA key is offered with SHA-2 signatures, as
// OpenSSH no longer accepts SHA-1 ones.
func hostKeyAlgorithms(k ssh.PublicKey) []string {
	if k.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{k.Type()}
}
