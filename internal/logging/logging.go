// Package logging holds sinkbus's one logging default and the bridge from
// log/slog to the Watermill components that log through a
// watermill.LoggerAdapter.
package logging

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// Attribute keys every log line about an integration or an event carries.
const (
	IntegrationID = "integration_id"
	EventID       = "event_id"
)

// Default is the logger of a configuration that names none: warnings and
// errors through slog.Default(), read at each line, so that a default the
// application sets after building the bus still applies. Nothing below
// slog.LevelWarn: a journal repair or a sink that cannot start is never
// silent, and routine lines stay out of the application's log.
func Default() *slog.Logger { return slog.New(floor{slog.LevelWarn}) }

// OrDefault returns l, or Default() when l is nil.
func OrDefault(l *slog.Logger) *slog.Logger {
	if l == nil {
		return Default()
	}
	return l
}

// floor hands the records at or above its level to slog.Default()'s
// handler of the moment.
type floor struct{ min slog.Level }

func (f floor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && slog.Default().Handler().Enabled(ctx, l)
}

func (f floor) Handle(ctx context.Context, r slog.Record) error {
	return slog.Default().Handler().Handle(ctx, r)
}

func (f floor) WithAttrs(attrs []slog.Attr) slog.Handler {
	return bound{floor: f, with: func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) }}
}

func (f floor) WithGroup(name string) slog.Handler {
	return bound{floor: f, with: func(h slog.Handler) slog.Handler { return h.WithGroup(name) }}
}

// bound is a floor with attributes or groups, applied to the default
// handler of the moment.
type bound struct {
	floor
	with func(slog.Handler) slog.Handler
}

func (b bound) Handle(ctx context.Context, r slog.Record) error {
	return b.with(slog.Default().Handler()).Handle(ctx, r)
}

func (b bound) WithAttrs(attrs []slog.Attr) slog.Handler {
	prev := b.with
	return bound{floor: b.floor, with: func(h slog.Handler) slog.Handler { return prev(h).WithAttrs(attrs) }}
}

func (b bound) WithGroup(name string) slog.Handler {
	prev := b.with
	return bound{floor: b.floor, with: func(h slog.Handler) slog.Handler { return prev(h).WithGroup(name) }}
}

// Watermill adapts l for the Watermill components (router, journal,
// delivery chain, sinks), which log through a watermill.LoggerAdapter.
func Watermill(l *slog.Logger) watermill.LoggerAdapter { return watermill.NewSlogLogger(l) }

// Router adapts l for Watermill's router, whose info lines (a handler
// added, a subscriber closed) say what sinkbus's own lines say better: they
// become debug lines.
func Router(l *slog.Logger) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(l, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
}
