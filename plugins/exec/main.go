// Command attachd-plugin-exec is attachd's exec hook: for each post-save
// event it runs a configured command, with the event JSON on stdin, the
// object described in ATTACHD_* environment variables and its bytes
// readable from the file or pipe named by ATTACHD_CONTENT_PATH. It plugs
// tools like ffmpeg or a speech-to-text program into attachd without
// writing Go.
//
// Exit status 0 means done, 75 (EX_TEMPFAIL) means try again later, and
// anything else, including being killed at the timeout, means the event
// failed; the message then carries the end of the command's stderr. Lines
// "annotation: key=value" on stdout become annotations on the object.
package main

import "github.com/attachd/attachd/plugins/sdk"

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { sdk.ServeHook(sdk.NameFromExecutable("exec"), version, &execHook{}) }
