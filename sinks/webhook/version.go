package webhook

import (
	"runtime/debug"
	"strings"
)

// modulePath is sinkbus's module, looked up in the build information.
const modulePath = "github.com/sinkbus/sinkbus"

// fallbackVersion is the version the User-Agent names when the binary
// records none for the module: go test, go run without VCS stamping.
const fallbackVersion = "0.1.0-dev"

// userAgent is computed once: the build information does not change.
var userAgent = "sinkbus/" + moduleVersion(debug.ReadBuildInfo())

// UserAgent returns the User-Agent of every request, "sinkbus/<version>",
// the version being the sinkbus module's as the binary records it (an
// application's go.mod pins it), else a development version. A custom
// header may override it.
func UserAgent() string { return userAgent }

// moduleVersion returns the version of sinkbus in info, without its "v",
// or fallbackVersion.
func moduleVersion(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return fallbackVersion
	}
	mod := info.Main
	if mod.Path != modulePath {
		mod = debug.Module{}
		for _, d := range info.Deps {
			if d.Path == modulePath {
				mod = *d
				break
			}
		}
	}
	if mod.Replace != nil && mod.Replace.Version != "" {
		mod = *mod.Replace
	}
	v := strings.TrimPrefix(mod.Version, "v")
	if v == "" || v == "(devel)" || !validHeaderName(v) {
		return fallbackVersion
	}
	return v
}
