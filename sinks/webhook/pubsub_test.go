package webhook_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// Watermill's universal Pub/Sub scenarios that fit a publisher-only sink.
// The subscriber side is a receiver that verifies each request, rebuilds
// the message from the envelope and publishes it to a persistent GoChannel
// on the topic of X-Sinkbus-Topic.
var pubSubFeatures = tests.Features{
	ConsumerGroups: false,
	// The sink delivers at least once; the receiver would dedupe on the id.
	ExactlyOnceDelivery: false,
	// One Publish call posts its messages one after the other, and the
	// receiver forwards each before answering.
	GuaranteedOrder:                     true,
	GuaranteedOrderWithSingleSubscriber: true,
	// The read-back GoChannel keeps what was published before Subscribe.
	Persistent: true,
	// The GoChannel lives in this process: subscribers must share it.
	RequireSingleInstance: true,
	// 100 messages instead of 10,000 in TestPublisherClose: the same 20
	// concurrent publishers, without 20 s of HTTP round trips under -race.
	ForceShort: true,
}

func TestPublishSubscribe(t *testing.T) {
	tests.TestPublishSubscribe(t, tests.TestContext{TestID: tests.NewTestID(), Features: pubSubFeatures}, newPubSub)
}

func TestPublisherClose(t *testing.T) {
	tests.TestPublisherClose(t, tests.TestContext{TestID: tests.NewTestID(), Features: pubSubFeatures}, newPubSub)
}

func TestTopic(t *testing.T) {
	tests.TestTopic(t, tests.TestContext{TestID: tests.NewTestID(), Features: pubSubFeatures}, newPubSub)
}

func newPubSub(t *testing.T) (message.Publisher, message.Subscriber) {
	readBack := gochannel.NewGoChannel(gochannel.Config{Persistent: true, OutputChannelBuffer: 10000}, watermill.NopLogger{})
	verifier, err := webhook.NewVerifier(secret)
	require.NoError(t, err)
	srv := httptest.NewServer(verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		msg, err := messageOf(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := readBack.Publish(r.Header.Get("X-Sinkbus-Topic"), msg); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})))
	t.Cleanup(srv.Close)

	pub, err := webhook.New(webhook.Config{URL: srv.URL, SecretKey: secret, AllowPrivateNetworks: true},
		sinks.Env{Concurrency: 20})
	require.NoError(t, err)
	return pub, readBack
}

// messageOf rebuilds the Watermill message an envelope came from. A payload
// that was not JSON travelled as a JSON string.
func messageOf(body []byte) (*message.Message, error) {
	var env sinks.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	payload := []byte(env.Payload)
	if len(payload) > 0 && payload[0] == '"' {
		var s string
		if err := json.Unmarshal(payload, &s); err != nil {
			return nil, err
		}
		payload = []byte(s)
	}
	msg := message.NewMessage(env.ID, payload)
	for k, v := range env.Metadata {
		msg.Metadata.Set(k, v)
	}
	return msg, nil
}
