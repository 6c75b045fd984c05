package webhook_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// benchConcurrency is how many deliveries run at once in the benchmarks.
const benchConcurrency = 8

// benchPayload is a 1 KiB JSON payload.
var benchPayload = `{"order_id":"o-1","note":"` + strings.Repeat("x", 1000) + `"}`

func benchReceiver(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func setBenchParallelism(b *testing.B) {
	b.SetParallelism((benchConcurrency + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
}

// BenchmarkPublish is the sink: envelope, Standard Webhooks signature,
// headers, POST, response handling.
func BenchmarkPublish(b *testing.B) {
	srv := benchReceiver(b)
	p, err := webhook.New(webhook.Config{URL: srv.URL, SecretKey: secret, AllowPrivateNetworks: true},
		sinks.Env{Concurrency: benchConcurrency})
	require.NoError(b, err)
	b.Cleanup(func() { _ = p.Close() })
	msgs := make([]*message.Message, 64)
	for i := range msgs {
		msgs[i] = event(fmt.Sprintf("01J0000000000000000000%04d", i), "order.fulfilled", benchPayload)
	}

	setBenchParallelism(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := p.Publish("order.fulfilled", msgs[i%len(msgs)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkRawClient is the baseline: net/http posting the same body with
// the same header names (values computed once), so that the receiver does
// the same work, on a keep-alive client sized for the same concurrency.
func BenchmarkRawClient(b *testing.B) {
	srv := benchReceiver(b)
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        benchConcurrency,
		MaxIdleConnsPerHost: benchConcurrency,
		DisableCompression:  true,
	}}
	b.Cleanup(client.CloseIdleConnections)
	body := sinks.AppendEnvelope(nil, event("01J00000000000000000000000", "order.fulfilled", benchPayload))
	header := http.Header{
		"Content-Type":         {"application/json"},
		"User-Agent":           {webhook.UserAgent()},
		"X-Sinkbus-Topic":      {"order.fulfilled"},
		"X-Sinkbus-Request-Id": {"0b5e8f4c-3a4d-4d7e-9f1a-2c3b4d5e6f70"},
		"Webhook-Id":           {"01J00000000000000000000000"},
		"Webhook-Timestamp":    {"1772366400"},
		"Webhook-Signature":    {specSignature(b, secret, "01J00000000000000000000000", "1772366400", body)},
	}

	setBenchParallelism(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header = header
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				b.Error(resp.Status)
				return
			}
		}
	})
}
