package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/formats"
)

// owner is the server's name as the owner of the integrations its
// -integrations file declares.
const owner = "examples-server"

// reconcile makes the integrations the file at path declares the server's,
// as on every start: created when missing, updated when the file changed,
// removed when the file no longer names them; those created through /api
// are left alone.
func reconcile(ctx context.Context, b *bus.Bus, path string, logger *slog.Logger) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	decode := formats.DecodeList
	if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
		decode = formats.DecodeListYAML
	}
	declared, err := decode(b.Integrations(), data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	res, err := b.Integrations().Reconcile(ctx, owner, declared)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	logger.Info("integrations reconciled", "file", path, "created", res.Created, "updated", res.Updated,
		"adopted", res.Adopted, "removed", res.Removed, "unchanged", len(res.Unchanged))
	return nil
}
