package s3_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/s3"
)

// NewStore's s3_parameters decode into a Config; reads show the secret masked.
func ExampleConfig_Masked() {
	cfg, err := sinks.NewRegistry(s3.Type).Decode("s3", json.RawMessage(`{
		"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
		"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"aws_region": "us-east-1",
		"bucket": "sap_export",
		"key_prefix": "newstore_integration_002"
	}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Validate())
	out, _ := json.Marshal(cfg.Masked())
	fmt.Println(string(out))
	// Output:
	// <nil>
	// {"aws_access_key_id":"****MPLE","aws_secret_access_key":"****EKEY","aws_region":"us-east-1","bucket":"sap_export","key_prefix":"newstore_integration_002"}
}

// An export to an S3-compatible store that cannot be reached (nothing
// listens on port 1): the event waits in the spool, Close does not wait for
// the store, and the integration log says what happened.
func ExampleNew() {
	data, err := os.MkdirTemp("", "sinkbus-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(data)

	env := sinks.Env{
		IntegrationID: "erp-export",
		DataDir:       data,
		Log:           func(action, reason string) { fmt.Println("log:", action) },
	}
	cfg := s3.Config{
		AccessKeyID:     "test",
		SecretAccessKey: "testsecret",
		Region:          "us-east-1",
		Bucket:          "exports",
		KeyPrefix:       "erp",
		Endpoint:        "http://127.0.0.1:1",
		PathStyle:       true,
		// A local S3-compatible store: loopback is refused otherwise.
		AllowPrivateNetworks: true,
		OnUploadError: func(key string, err error) {
			var ue *s3.UploadError
			if errors.As(err, &ue) && errors.Is(err, sinks.ErrPermanent) {
				log.Printf("upload of %s refused (%s): fix the integration", key, ue.Code)
			}
		},
	}
	sink, err := s3.New(cfg, env)
	if err != nil {
		log.Fatal(err)
	}

	msg := message.NewMessage("evt-1", []byte(`{"order_id":"o-1"}`))
	msg.Metadata.Set(sinks.MetaName, "order.fulfilled")
	msg.Metadata.Set(sinks.MetaTenant, "acme")
	if err := sink.Publish("events", msg); err != nil {
		log.Print(err) // retryable: the spool could not take the event
	}
	// Close finishes the open file and tries its upload once more.
	fmt.Println("close:", sink.Close())
	fmt.Println("waiting for upload:", sink.Pending())

	// Deleting the integration: its spooled events go with it.
	fmt.Println("purge:", cfg.Purge(env))
	// Output:
	// log: upload_failed
	// log: upload_pending
	// close: <nil>
	// waiting for upload: 1
	// purge: <nil>
}
