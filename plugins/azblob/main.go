// Command attachd-plugin-azblob stores attachd's blobs in an Azure Blob
// Storage container (or Azurite). A blob is uploaded as staged blocks and
// becomes visible only when its block list is committed.
package main

import "github.com/attachd/attachd/plugins/sdk"

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { sdk.ServeStorage("azblob", version, &backend{}) }
