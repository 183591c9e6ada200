// Command attachd-plugin-sftp stores attachd's blobs on an SFTP server
// (OpenSSH or any server with the posix-rename extension). Each blob is a
// file under root, written to a temporary name and renamed over the final
// name on commit, so readers never see a partial file.
package main

import "github.com/attachd/attachd/plugins/sdk"

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { sdk.ServeStorage("sftp", version, &backend{}) }
