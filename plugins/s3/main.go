// Command attachd-plugin-s3 stores attachd's blobs in an S3 bucket (Amazon
// S3, MinIO, or any S3-compatible store). A blob up to one part is a single
// PUT; a larger one is a multipart upload that becomes visible only when it
// is completed, and is aborted otherwise.
package main

import "github.com/attachd/attachd/plugins/sdk"

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { sdk.ServeStorage("s3", version, &backend{}) }
