package logging_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sinkbus/sinkbus/internal/logging"
)

// The default passes warnings and errors, with their attributes, to the
// slog default of the moment, and nothing below.
func TestDefault_logs_warnings_and_errors_through_slog_Default(t *testing.T) {
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })

	l := logging.Default().With(logging.IntegrationID, "erp")
	var buf bytes.Buffer
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))

	l.Info("routine")
	l.Debug("chatter")
	l.WithGroup("g").Warn("journal repaired", "cut", 12)
	l.Error("sink cannot start", "error", "refused")

	out := buf.String()
	assert.NotContains(t, out, "routine")
	assert.NotContains(t, out, "chatter")
	assert.Contains(t, out, `level=WARN msg="journal repaired" integration_id=erp g.cut=12`)
	assert.Contains(t, out, `level=ERROR msg="sink cannot start" integration_id=erp error=refused`)
}

// Watermill's router says at info level what sinkbus says better: those
// lines become debug lines; its errors stay errors.
func TestRouter_moves_info_to_debug(t *testing.T) {
	var buf bytes.Buffer
	l := logging.Router(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Info("Adding handler", nil)
	l.Error("Handler returned error", assert.AnError, nil)
	assert.NotContains(t, buf.String(), "Adding handler")
	assert.Contains(t, buf.String(), "Handler returned error")
}
