package webhook_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/webhook"
)

// A publisher posting signed events, and a receiver checking them.
func ExampleNew() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

	// The receiver: Middleware answers 401 to anything not signed with the
	// secret, and passes the body on.
	verifier, err := webhook.NewVerifier(secret)
	if err != nil {
		panic(err)
	}
	receiver := httptest.NewServer(verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var event sinks.Envelope
		_ = json.Unmarshal(body, &event)
		fmt.Printf("received %s %s: %s\n", event.Name, r.Header.Get("webhook-id"), event.Payload)
		w.WriteHeader(http.StatusNoContent)
	})))
	defer receiver.Close()

	publisher, err := webhook.New(webhook.Config{
		URL:       receiver.URL + "/hooks/orders",
		SecretKey: secret,
		Timeout:   sinks.Duration(3 * time.Second),
		// The example's receiver is on loopback, which the sink refuses by
		// default.
		AllowPrivateNetworks: true,
	}, sinks.Env{})
	if err != nil {
		panic(err)
	}
	defer publisher.Close()

	msg := message.NewMessage("01J9Z3K4M5N6P7Q8R9S0T1V2W3", []byte(`{"order_id":"o-1"}`))
	msg.Metadata.Set(sinks.MetaName, "order.fulfilled")
	err = publisher.Publish("order.fulfilled", msg)
	class, _ := sinks.Classify(err)
	fmt.Println(class)
	// Output:
	// received order.fulfilled 01J9Z3K4M5N6P7Q8R9S0T1V2W3: {"order_id":"o-1"}
	// delivered
}

// Checking a request by hand, here the Standard Webhooks test vector.
func ExampleVerify() {
	headers := http.Header{}
	headers.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	headers.Set("webhook-timestamp", "1614265330")
	headers.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	secrets := []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	sentAt := time.Unix(1614265330, 0)

	fmt.Println(webhook.Verify(secrets, headers, body, sentAt.Add(time.Second), 0))
	fmt.Println(webhook.Verify(secrets, headers, []byte(`{"test": 1}`), sentAt, 0))
	err := webhook.Verify(secrets, headers, body, sentAt.Add(time.Hour), 0)
	fmt.Println(errors.Is(err, webhook.ErrTimestampTooOld))
	// Output:
	// <nil>
	// sinkbus: webhook signature invalid
	// true
}

// Building the sink from an integration's JSON configuration, as the bus
// does, and showing it with its secrets masked.
func ExampleType() {
	registry := sinks.NewRegistry(webhook.Type)
	cfg, err := registry.Decode("webhook", json.RawMessage(`{
		"callback_url": "https://erp.example.com/newstore",
		"api_key": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
	}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Validate())
	masked, _ := json.Marshal(cfg.Masked())
	fmt.Println(string(masked))

	// Validate reports every problem at once, each naming its field.
	bad, err := registry.Decode("webhook", json.RawMessage(`{"url": "ftp://erp.example.com", "timeout": "-1s"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(bad.Validate())
	// Output:
	// <nil>
	// {"url":"https://erp.example.com/newstore","api_key":"****VCJ9"}
	// url: must be https or http
	// timeout: must not be negative
}
