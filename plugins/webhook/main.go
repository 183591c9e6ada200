// Command attachd-plugin-webhook is attachd's webhook hook: it POSTs each
// post-save event, as the JSON attachd sent, to a URL, signed with
// HMAC-SHA256 so the receiver can check that attachd sent it.
//
// The receiver answers 2xx to accept the event (optionally with
// {"annotations": {"k": "v"}} in the body), 429 or 5xx to have it retried
// (after Retry-After seconds if given), and any other status to reject it
// for good. A timeout or a connection error is retried.
package main

import "github.com/attachd/attachd/plugins/sdk"

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { sdk.ServeHook(sdk.NameFromExecutable("webhook"), version, &webhook{}) }
