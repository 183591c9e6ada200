//go:build tools

// This file pins the chosen dependencies in go.mod while the packages that use them are written.

package main

import (
	_ "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	_ "github.com/BurntSushi/toml"
	_ "github.com/hashicorp/go-hclog"
	_ "github.com/hashicorp/go-plugin"
	_ "github.com/pkg/sftp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/urfave/cli/v2"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/crypto/ssh"
	_ "golang.org/x/net/webdav"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/proto"
	_ "modernc.org/sqlite"
)
