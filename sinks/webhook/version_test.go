package webhook_test

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sinkbus/sinkbus/sinks/webhook"
)

func TestUserAgent_names_the_module_version(t *testing.T) {
	const mod = "github.com/sinkbus/sinkbus"
	dep := func(path, version string) *debug.Module { return &debug.Module{Path: path, Version: version} }
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"a dependency of the application", &debug.BuildInfo{
			Main: debug.Module{Path: "example.com/shop", Version: "v1.2.3"},
			Deps: []*debug.Module{dep("github.com/ThreeDotsLabs/watermill", "v1.5.1"), dep(mod, "v0.4.2")},
		}, true, "0.4.2"},
		{"replaced by a fork", &debug.BuildInfo{
			Main: debug.Module{Path: "example.com/shop"},
			Deps: []*debug.Module{{Path: mod, Version: "v0.4.2", Replace: dep("example.com/fork", "v0.4.3-fix.1")}},
		}, true, "0.4.3-fix.1"},
		{"replaced by a directory", &debug.BuildInfo{
			Main: debug.Module{Path: "example.com/shop"},
			Deps: []*debug.Module{{Path: mod, Version: "v0.4.2", Replace: &debug.Module{Path: "../sinkbus"}}},
		}, true, "0.4.2"},
		{"the main module, stamped", &debug.BuildInfo{
			Main: debug.Module{Path: mod, Version: "v0.0.0-20261202103000-0123456789ab+dirty"},
		}, true, "0.0.0-20261202103000-0123456789ab+dirty"},
		{"the main module, go test", &debug.BuildInfo{Main: debug.Module{Path: mod, Version: "(devel)"}}, true, "0.1.0-dev"},
		{"not a dependency", &debug.BuildInfo{Main: debug.Module{Path: "example.com/shop"}}, true, "0.1.0-dev"},
		{"not a header token", &debug.BuildInfo{Main: debug.Module{Path: mod, Version: "v1 (odd)"}}, true, "0.1.0-dev"},
		{"no build information", nil, false, "0.1.0-dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, webhook.ModuleVersion(tt.info, tt.ok))
		})
	}
	info, ok := debug.ReadBuildInfo()
	assert.Equal(t, "sinkbus/"+webhook.ModuleVersion(info, ok), webhook.UserAgent())
}
