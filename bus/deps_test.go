package bus_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/bustest"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// goListDeps returns the packages pkg depends on, itself included.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/sinkbus/sinkbus/"+pkg).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.Fields(string(out))
}

// The bus links only the sinks an application imports: no SDK or broker
// client of a sink it does not use, no Prometheus unless it imports
// bus/metrics.
func TestBus_imports_no_concrete_sink(t *testing.T) {
	for _, pkg := range goListDeps(t, "bus") {
		for _, banned := range []string{"aws", "smithy", "stomp", "prometheus", "sinkbus/sinkbus/sinks/"} {
			assert.NotContains(t, pkg, banned, "bus depends on %s", pkg)
		}
	}
}

// The core speaks OpenTelemetry's API only, and a small part of it (trace,
// its attributes and W3C propagation): the application brings its SDK and
// exporter, and a program without tracing links nothing more.
func TestBus_links_the_OpenTelemetry_API_only(t *testing.T) {
	var otel []string
	for _, pkg := range goListDeps(t, "bus") {
		for _, banned := range []string{"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/metric", "go.opentelemetry.io/otel/log", "github.com/go-logr/"} {
			assert.False(t, strings.HasPrefix(pkg, banned), "bus depends on %s", pkg)
		}
		assert.NotEqual(t, "go.opentelemetry.io/otel", pkg, "the otel package brings the global providers and logr")
		if strings.HasPrefix(pkg, "go.opentelemetry.io/") {
			otel = append(otel, pkg)
		}
	}
	assert.LessOrEqual(t, len(otel), 14, "OpenTelemetry packages linked: %v", otel)
}

// Every package depends downwards only: field and netguard on the
// standard library, the layers below the bus on neither the bus nor a
// concrete sink, the callers' hook (bus/access) on the bus alone.
func TestPackages_depend_downwards(t *testing.T) {
	const mod = "github.com/sinkbus/sinkbus/"
	for pkg, above := range map[string][]string{
		"field":           {mod},
		"netguard":        {mod},
		"sinks":           {mod + "filter", mod + "middleware", mod + "replay", mod + "bus", mod + "sinks/"},
		"filter":          {mod + "middleware", mod + "replay", mod + "bus", mod + "sinks/"},
		"middleware":      {mod + "filter", mod + "replay", mod + "bus", mod + "sinks/"},
		"replay":          {mod + "sinks", mod + "filter", mod + "middleware", mod + "bus", mod + "replay/"},
		"replay/segments": {mod + "sinks", mod + "filter", mod + "middleware", mod + "bus"},
		"replay/postgres": {mod + "sinks", mod + "filter", mod + "middleware", mod + "bus", mod + "replay/segments"},
		"replay/storagetest": {mod + "sinks", mod + "filter", mod + "middleware", mod + "bus",
			mod + "replay/segments", mod + "replay/postgres"},
		"bus":          {mod + "bus/", mod + "sinks/"},
		"sinks/pubsub": {mod + "bus", mod + "filter", mod + "middleware", mod + "replay"},
		"bus/access":   {mod + "bus/", mod + "sinks/"},
	} {
		for _, dep := range goListDeps(t, pkg) {
			if dep == mod+pkg {
				continue
			}
			for _, a := range above {
				assert.False(t, strings.HasPrefix(dep, a), "%s depends on %s", pkg, dep)
			}
		}
	}
}

// A registry of the application's own still knows in-process handlers, and
// only the types it holds.
func TestBus_explicit_registry_knows_handlers_and_its_own_types_only(t *testing.T) {
	tb := bustest.New(t, func(c *bus.Config) { c.Sinks = sinks.NewRegistry() })
	require.NoError(t, tb.Handle("mailer", []string{"order.*"}, func(context.Context, bus.Event) error { return nil }))
	_, err := tb.Integrations().Create(context.Background(), bus.Integration{Sink: webhook.Config{URL: "https://example.com/hook"}})
	require.ErrorIs(t, err, bus.ErrInvalid)
	assert.Contains(t, err.Error(), `integration_type: unknown type "webhook" (known: handler)`)
}

// A program that never names a *bus.Postgres links none of the PostgreSQL
// code: the bus reaches it only through bus.Shared.
func TestWebhookOnlyProgram_links_no_database_driver(t *testing.T) {
	if testing.Short() {
		t.Skip("builds examples/webhook")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "webhook")
	out, err := exec.Command(gobin, "build", "-o", bin, "github.com/sinkbus/sinkbus/examples/webhook").CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(gobin, "tool", "nm", bin).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, sym := range []string{"pgxpool.(*Pool).Acquire", "pgconn.(*PgConn).Exec", "sinkbus/bus.(*pgBackend).run", "sinkbus/replay/postgres.Open"} {
		assert.NotContains(t, string(out), sym)
	}
	// What makes the check able to fail: the outbox example links them.
	out, err = exec.Command(gobin, "build", "-o", bin, "github.com/sinkbus/sinkbus/examples/outbox").CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(gobin, "tool", "nm", bin).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "sinkbus/bus.(*pgBackend).run")
}
