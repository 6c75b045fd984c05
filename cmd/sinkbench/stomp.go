package main

import (
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	gostomp "github.com/go-stomp/stomp/v3"

	"github.com/sinkbus/sinkbus/cmd/sinkbench/internal/bench"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

func init() {
	register(benchCase{
		name: "stomp",
		about: "publish → journal → filter → chain → stomp sink → RabbitMQ topic without subscribers, receipt on every SEND, " +
			"concurrency 8 over the sink's 4 connections (one SEND awaiting its receipt per connection), " +
			"vs raw go-stomp sends of the same frames with receipts over 4 connections, one awaiting its receipt per connection",
		setup: setupStomp,
	})
}

// stompConns is how many connections the sink opens by default at
// concurrency 8 (stomp.DefaultMaxConnections); each carries one send at a
// time, waiting for its receipt.
const stompConns = stomp.DefaultMaxConnections

func setupStomp(quick bool) (ours, raw func() float64, cleanup func(), skip string) {
	addr := os.Getenv("SINKBUS_STOMP_RABBITMQ")
	if addr == "" {
		return nil, nil, nil, "SINKBUS_STOMP_RABBITMQ is not set; " + serversHint
	}
	user, pass := os.Getenv("SINKBUS_STOMP_RABBITMQ_USER"), os.Getenv("SINKBUS_STOMP_RABBITMQ_PASS")
	n := 40_000
	if quick {
		n = 10_000
	}
	n -= n % (bench.Concurrency * stompConns)

	// A topic nobody subscribes to: RabbitMQ answers each receipt at once
	// and keeps nothing, so the figures are the clients' cost, not the
	// broker's disk (a durable queue runs both sides at its fsync rate).
	dest := "/topic/sinkbench-" + watermill.NewShortUUID()
	oursRound, stopBus := sinkBus("stomp", stomp.Config{
		Addresses: []string{"stomp://" + addr}, Destination: dest, Username: user, Password: pass,
		Connections:          stompConns, // the default, spelled out because raw must match it
		AllowPrivateNetworks: true,
	})

	dial := func() *gostomp.Conn {
		// The sink's connect options: vhost "/", its default heart-beats and
		// their grace (an idle connection is not cut for 30 s).
		c, err := gostomp.Dial("tcp", addr, gostomp.ConnOpt.Host(stomp.DefaultVHost),
			gostomp.ConnOpt.Login(user, pass),
			gostomp.ConnOpt.HeartBeat(stomp.DefaultHeartBeat, stomp.DefaultHeartBeat),
			gostomp.ConnOpt.HeartBeatGracePeriodMultiplier(2))
		bench.Must(err)
		return c
	}
	conns := make([]*gostomp.Conn, stompConns)
	for i := range conns {
		conns[i] = dial()
	}
	// The frame the sink sends for a bus event: envelope body and headers.
	msg := bench.Message()
	body := sinks.AppendEnvelope(nil, msg)
	rawRound := func(n int) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n / len(conns) {
					bench.Must(c.Send(dest, stomp.ContentType, body, gostomp.SendOpt.Receipt,
						gostomp.SendOpt.Header("persistent", "true"),
						gostomp.SendOpt.Header(stomp.HeaderID, msg.UUID),
						gostomp.SendOpt.Header(stomp.HeaderName, "order.created")))
				}
			}()
		}
		wg.Wait()
		return bench.PerSecond(n, time.Since(start))
	}

	// Every connection up before the first timed round.
	warm := n / 10
	warm -= warm % (bench.Concurrency * stompConns)
	oursRound(warm)
	rawRound(warm)

	ours = func() float64 { return oursRound(n) }
	raw = func() float64 { return rawRound(n) }
	cleanup = func() {
		stopBus()
		for _, c := range conns {
			_ = c.Disconnect()
		}
	}
	return ours, raw, cleanup, ""
}
