package file_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/file"
)

func ExampleNew() {
	dir, err := os.MkdirTemp("", "sinkbus-export")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	var finished []string
	sink, err := file.New(file.Config{
		Dir:         dir,
		KeyPrefix:   "erp",
		OnFinalized: func(path string) { finished = append(finished, path) },
	}, sinks.Env{IntegrationID: "erp-export"})
	if err != nil {
		panic(err)
	}

	msg := message.NewMessage("evt-1", []byte(`{"order_id":"o-1"}`))
	msg.Metadata.Set(sinks.MetaName, "order.fulfilled")
	msg.Metadata.Set(sinks.MetaTenant, "acme")
	msg.Metadata.Set(sinks.MetaPublishedAt, "2026-01-01T00:00:00Z")
	if err := sink.Publish("events", msg); err != nil {
		panic(err)
	}
	if err := sink.Close(); err != nil { // finishes the open file
		panic(err)
	}

	name := regexp.MustCompile(`\d{13}-data-[a-z0-9]+`)
	for _, path := range finished {
		rel, _ := filepath.Rel(dir, path)
		fmt.Println(name.ReplaceAllString(filepath.ToSlash(rel), "<epoch_ms>-data-<random>"))
		data, _ := os.ReadFile(path)
		fmt.Print(string(data))
	}
	// Output:
	// erp/acme/<epoch_ms>-data-<random>.export
	// {"id":"evt-1","name":"order.fulfilled","tenant":"acme","published_at":"2026-01-01T00:00:00Z","payload":{"order_id":"o-1"}}
}

func ExampleConfig_Validate() {
	cfg, err := sinks.NewRegistry(file.Type).Decode("file",
		json.RawMessage(`{"key_prefix":"/erp","rotate_every":"10ms","fsync":"sometimes"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Validate())
	// Output:
	// key_prefix: must not start or end with "/" nor contain "//"
	// rotate_every: must be at least 1s
	// fsync: must be one of "rotation", "batch", "event"
}
