// Package logging holds sinkbus's one logging default and the bridge from
// log/slog to the Watermill components that log through a
// watermill.LoggerAdapter.
package logging

import (
	"context"
	"log/slog"
	"sort"

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
//
// Watermill's own slog adapter (watermill.NewSlogLogger) turns a line's
// fields into attributes before slog asks whether the level is on: the
// router's trace lines, one per message, would cost allocations on every
// delivery with nobody reading them. This one asks first.
func Watermill(l *slog.Logger) watermill.LoggerAdapter { return adapter{l: l, info: slog.LevelInfo} }

// Router adapts l for Watermill's router, whose info lines (a handler
// added, a subscriber closed) say what sinkbus's own lines say better: they
// become debug lines.
func Router(l *slog.Logger) watermill.LoggerAdapter { return adapter{l: l, info: slog.LevelDebug} }

// levelTrace is Watermill's trace level in slog terms, as
// watermill.LevelTrace.
const levelTrace = slog.LevelDebug - 4

type adapter struct {
	l    *slog.Logger
	info slog.Level // the level of Info lines
}

func (a adapter) Error(msg string, err error, fields watermill.LogFields) {
	a.log(slog.LevelError, msg, fields, err)
}
func (a adapter) Info(msg string, fields watermill.LogFields) { a.log(a.info, msg, fields, nil) }
func (a adapter) Debug(msg string, fields watermill.LogFields) {
	a.log(slog.LevelDebug, msg, fields, nil)
}
func (a adapter) Trace(msg string, fields watermill.LogFields) { a.log(levelTrace, msg, fields, nil) }

func (a adapter) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return adapter{l: slog.New(a.l.Handler().WithAttrs(attrs(fields, nil))), info: a.info}
}

func (a adapter) log(level slog.Level, msg string, fields watermill.LogFields, err error) {
	ctx := context.Background()
	if !a.l.Enabled(ctx, level) {
		return
	}
	a.l.LogAttrs(ctx, level, msg, attrs(fields, err)...)
}

// attrs turns Watermill's fields into slog attributes, sorted by key so
// that lines read the same every time; err, when set, comes first.
func attrs(fields watermill.LogFields, err error) []slog.Attr {
	out := make([]slog.Attr, 0, len(fields)+1)
	if err != nil {
		out = append(out, slog.Any("error", err))
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, slog.Any(k, fields[k]))
	}
	return out
}
