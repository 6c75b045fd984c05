package stomp_test

import (
	"strings"
	"sync/atomic"
	"testing"

	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// BenchmarkPublish compares the sink with raw go-stomp sends of the same
// frame (body and headers), each with a receipt, over the same 4 connections
// to RabbitMQ, from
// 16 goroutines, with 1 KiB payloads. "queue" is a durable queue, where
// RabbitMQ confirms only once the message is on disk; "topic" has no queue
// behind it, so the broker answers at once and the client's own cost shows.
// Each run reports events/s; compare sink and raw of the same run.
func BenchmarkPublish(b *testing.B) {
	br := rabbitMQ(b)
	const conns = 4
	msg := event("order.created", "acme", `{"data":"`+strings.Repeat("x", 1000)+`"}`)
	msg.Metadata.Set("source", "storefront")
	for _, dest := range []string{"/queue/sinkbus-test.bench", "/topic/sinkbus-test.bench"} {
		kind := strings.Split(dest, "/")[1]
		b.Run(kind+"/sink", func(b *testing.B) {
			cfg := br.config(dest)
			cfg.Connections = conns
			p, err := stomp.New(cfg, sinks.Env{Concurrency: 16})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := p.Publish("", msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(kind+"/raw", func(b *testing.B) {
			var cs [conns]*gostomp.Conn
			for i := range cs {
				cs[i] = br.dial(b)
				defer cs[i].Disconnect()
			}
			body := sinks.AppendEnvelope(nil, msg)
			var next atomic.Uint32
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := cs[next.Add(1)%conns]
				for pb.Next() {
					if err := c.Send(dest, "application/json", body, gostomp.SendOpt.Receipt,
						gostomp.SendOpt.Header("persistent", "true"),
						gostomp.SendOpt.Header(stomp.HeaderID, msg.UUID),
						gostomp.SendOpt.Header(stomp.HeaderName, "order.created"),
						gostomp.SendOpt.Header(stomp.HeaderTenant, "acme"),
						gostomp.SendOpt.Header("source", "storefront")); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
