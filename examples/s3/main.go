// Command s3 exports order events to an S3 bucket through an s3
// integration (NewStore's S3 export): NDJSON files per tenant, uploaded
// once finished. Stopping the integration finishes its files; the program
// then lists the bucket and prints each object. By default it talks to the
// S3 gateway of scripts/test-servers.sh; SINKBUS_S3_ENDPOINT,
// SINKBUS_S3_ACCESS_KEY and SINKBUS_S3_SECRET_KEY point it elsewhere.
//
//	go run ./examples/s3
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/sinks/s3"
)

// store is an S3 endpoint and its credentials.
type store struct{ endpoint, access, secret string }

func (st store) client() *awss3.Client {
	return awss3.New(awss3.Options{Region: "us-east-1", BaseEndpoint: aws.String(st.endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(st.access, st.secret, "")})
}

func main() {
	st := store{env("SINKBUS_S3_ENDPOINT", "http://127.0.0.1:7070"), env("SINKBUS_S3_ACCESS_KEY", "test"), env("SINKBUS_S3_SECRET_KEY", "testsecret")}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, st, "sinkbus-example-exports"); err != nil {
		log.Fatal(err)
	}
}

// run exports four events into bucket (created when missing) and writes
// the objects it holds to out.
func run(ctx context.Context, out io.Writer, st store, bucket string) error {
	client := st.client()
	if _, err := client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "sinkbus-s3-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The s3 sink spools its files in DataDir; the test gateway is on loopback.
	b, err := bus.New(bus.Config{DataDir: dir, AllowPrivateNetworks: true})
	if err != nil {
		return err
	}
	defer b.Close()
	go func() { _ = b.Run(ctx) }()
	_, err = b.Integrations().Create(ctx, bus.Integration{
		ID:       "orders-export",
		Observes: []string{"order.*"},
		Sink: s3.Config{Bucket: bucket, KeyPrefix: "orders", Endpoint: st.endpoint, PathStyle: true,
			Region: "us-east-1", AccessKeyID: st.access, SecretAccessKey: st.secret, AllowPrivateNetworks: true},
	})
	if err != nil {
		return err
	}
	for i, tenant := range []string{"acme", "acme", "globex", "acme"} {
		err := b.Publish(ctx, bus.Event{ID: fmt.Sprintf("o-%d", i), Name: "order.fulfilled", Tenant: tenant,
			Payload: []byte(fmt.Sprintf(`{"order_id":"o-%d"}`, i))})
		if err != nil {
			return err
		}
	}
	// Files are uploaded every 5 minutes (rotate_every) or when the
	// integration stops, as here.
	for lag := uint64(1); lag > 0; time.Sleep(10 * time.Millisecond) {
		if lag, err = b.Integrations().Lag(ctx, "orders-export"); err != nil {
			return err
		}
	}
	if _, err := b.Integrations().Stop(ctx, "orders-export"); err != nil {
		return err
	}

	list, err := client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("orders/")})
	if err != nil {
		return err
	}
	for _, o := range list.Contents {
		obj, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil {
			return err
		}
		body, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s\n%s", *o.Key, body)
	}
	return nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
