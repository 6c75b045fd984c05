package logging_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
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

// A line below the logger's level costs nothing: the router writes a trace
// line for every message it handles.
func TestWatermill_line_below_the_level_allocates_nothing(t *testing.T) {
	l := logging.Watermill(logging.Default())
	fields := watermill.LogFields{"message_uuid": "e1", "handler_name": "erp#1"}
	assert.Zero(t, testing.AllocsPerRun(100, func() { l.Trace("Received message", fields) }))
	assert.Zero(t, testing.AllocsPerRun(100, func() { l.Info("Received message", fields) }))
}

// Fields become attributes, the error first, the rest sorted.
func TestWatermill_fields_become_attributes(t *testing.T) {
	var buf bytes.Buffer
	l := logging.Watermill(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.With(watermill.LogFields{"integration_id": "erp"}).Error("Cannot read journal", assert.AnError, watermill.LogFields{"offset": 7, "b": "x"})
	assert.Contains(t, buf.String(), `level=ERROR msg="Cannot read journal" integration_id=erp error="assert.AnError general error for testing" b=x offset=7`)
}
