package sqs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsqs "github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/internal/testenv"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// local-aws-sqs names every queue under this account.
const account = "123456789012"

func sqsEndpoint(t testing.TB) string {
	t.Helper()
	return testenv.Server(t, "SINKBUS_SQS_ENDPOINT")
}

func awsConfig(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	require.NoError(t, err)
	return cfg
}

func withEndpoint(endpoint string) func(*awssqs.Options) {
	return func(o *awssqs.Options) { o.BaseEndpoint = aws.String(endpoint) }
}

// rawClient is a plain SDK client of the server at endpoint, for setting up
// queues and reading them back.
func rawClient(t testing.TB, endpoint string) *awssqs.Client {
	t.Helper()
	return awssqs.NewFromConfig(awsConfig(t), withEndpoint(endpoint))
}

// newQueue creates a queue with a unique name (a FIFO one when fifo) and
// deletes it when the test ends. It returns the queue URL.
func newQueue(t testing.TB, endpoint string, fifo bool, attrs map[string]string) string {
	t.Helper()
	name := "sinkbus-" + strings.ReplaceAll(watermill.NewShortUUID(), "_", "-")
	if attrs == nil {
		attrs = map[string]string{}
	}
	if fifo {
		name += ".fifo"
		attrs["FifoQueue"] = "true"
	}
	c := rawClient(t, endpoint)
	out, err := c.CreateQueue(context.Background(), &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = c.DeleteQueue(context.Background(), &awssqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	})
	return *out.QueueUrl
}

func config(url string) sqs.Config {
	// The test server listens on loopback.
	return sqs.Config{URL: url, Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test", AllowPrivateNetworks: true}
}

func newSink(t testing.TB, c sqs.Config, concurrency int) *sqs.Publisher {
	t.Helper()
	p, err := sqs.NewPublisher(c, sinks.Env{Concurrency: concurrency})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// event is a message as the bus hands it to a sink.
func event(name, tenant, payload string) *message.Message {
	msg := message.NewMessage(watermill.NewULID(), []byte(payload))
	msg.Metadata.Set(sinks.MetaName, name)
	if tenant != "" {
		msg.Metadata.Set(sinks.MetaTenant, tenant)
	}
	msg.Metadata.Set(sinks.MetaPublishedAt, "2026-11-22T10:00:00.123456789Z")
	msg.Metadata.Set(sinks.MetaAttempt, "1")
	return msg
}

// drain receives and deletes every message of the queue until SQS counts
// none left, and returns them in the order received.
func drain(t testing.TB, endpoint, queueURL string) []types.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := rawClient(t, endpoint)
	var got []types.Message
	for {
		out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"},
			AttributeNames: []types.QueueAttributeName{"All"}, // local-aws-sqs ignores MessageSystemAttributeNames
		})
		require.NoError(t, err)
		for _, m := range out.Messages {
			got = append(got, m)
			_, err := c.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle})
			require.NoError(t, err)
		}
		if len(out.Messages) > 0 {
			continue
		}
		attrs, err := c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
			AttributeNames: []types.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
		require.NoError(t, err)
		if attrs.Attributes["ApproximateNumberOfMessages"] == "0" && attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0" {
			return got
		}
	}
}

// subscriber is a watermill-aws Subscriber that reads what the sink sent,
// given the queue URL as topic (its TransparentUrlResolver), as an
// application would read the queue it configured the sink with.
func subscriber(t testing.TB, endpoint string) *wsqs.Subscriber {
	t.Helper()
	sub, err := wsqs.NewSubscriber(wsqs.SubscriberConfig{
		AWSConfig:                   awsConfig(t),
		OptFns:                      []func(*awssqs.Options){withEndpoint(endpoint)},
		DoNotCreateQueueIfNotExists: true,
		QueueUrlResolver:            wsqs.TransparentUrlResolver{},
		GenerateReceiveMessageInput: func(ctx context.Context, q wsqs.QueueURL) (*awssqs.ReceiveMessageInput, error) {
			in, err := wsqs.GenerateReceiveMessageInputDefault(ctx, q)
			in.MaxNumberOfMessages = 10
			in.WaitTimeSeconds = 1
			return in, err
		},
		Unmarshaler: sqs.Unmarshaler{},
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// readBack subscribes to the queue at queueURL and returns its first n
// messages, acked.
func readBack(t testing.TB, sub message.Subscriber, queueURL string, n int) []*message.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := sub.Subscribe(ctx, queueURL)
	require.NoError(t, err)
	var got []*message.Message
	for len(got) < n {
		select {
		case m := <-ch:
			m.Ack()
			got = append(got, m)
		case <-ctx.Done():
			t.Fatalf("read %d of %d messages from %s", len(got), n, queueURL)
		}
	}
	return got
}

func queueName(queueURL string) string { return queueURL[strings.LastIndex(queueURL, "/")+1:] }

// countingProxy forwards to endpoint, counts requests per SQS action and
// records which events each send request carried. While hold is set, it
// keeps the first request it sees until release.
type countingProxy struct {
	URL      string
	mu       sync.Mutex
	actions  map[string]int
	requests []sendRequest

	// reject, when set, answers a request with SQS's InvalidParameterValue
	// error instead of forwarding it, when it returns true.
	reject func(action, body string) bool
	// failEntry, when set, fails the messages whose body it returns true
	// for as SQS does when it could not store them, a fault of its own: a
	// batch entry is left out of the request the server gets and reported
	// Failed with InternalError and SenderFault false; a lone message is
	// answered 500 InternalError.
	failEntry func(body string) bool

	hold     chan struct{} // closed by release
	holdOnce sync.Once
	held     chan struct{} // closed when the first request is held
}

// sendRequest is a SendMessage or SendMessageBatch request as the sink sent
// it: the ids of the events it carried, in order.
type sendRequest struct {
	Action string
	Events []string
}

func newCountingProxy(t testing.TB, endpoint string, holdFirst bool) *countingProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	require.NoError(t, err)
	p := &countingProxy{actions: map[string]int{}, hold: make(chan struct{}), held: make(chan struct{})}
	if !holdFirst {
		p.release()
	}
	var first sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.actions[action]++
		p.mu.Unlock()
		isFirst := false
		first.Do(func() { isFirst = true })
		if isFirst && holdFirst {
			close(p.held)
			<-p.hold
		}
		if p.reject != nil && p.reject(action, string(body)) {
			writeAWSError(w, http.StatusBadRequest, "InvalidParameterValue", "Sender")
			return
		}
		rp := httputil.NewSingleHostReverseProxy(target)
		switch action {
		case "SendMessage":
			var in struct{ MessageBody string }
			if err := json.Unmarshal(body, &in); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			p.record(action, in.MessageBody)
			if p.failEntry != nil && p.failEntry(in.MessageBody) {
				writeAWSError(w, http.StatusInternalServerError, "InternalError", "Receiver")
				return
			}
		case "SendMessageBatch":
			body, rp.ModifyResponse = p.batch(t, body)
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(p.release)
	p.URL = srv.URL
	return p
}

// batch records a SendMessageBatch request and applies failEntry: it
// returns the body to forward and what to do with the answer.
func (p *countingProxy) batch(t testing.TB, body []byte) ([]byte, func(*http.Response) error) {
	var in map[string]any
	require.NoError(t, json.Unmarshal(body, &in))
	entries, _ := in["Entries"].([]any)
	var bodies []string
	var keep, failed []any
	for _, e := range entries {
		entry := e.(map[string]any)
		b, _ := entry["MessageBody"].(string)
		bodies = append(bodies, b)
		if p.failEntry != nil && p.failEntry(b) {
			failed = append(failed, map[string]any{"Id": entry["Id"], "Code": "InternalError",
				"Message": "failed by the test proxy", "SenderFault": false})
			continue
		}
		keep = append(keep, e)
	}
	p.record("SendMessageBatch", bodies...)
	if len(failed) == 0 {
		return body, nil
	}
	require.NotEmpty(t, keep, "the test proxy fails some entries of a batch, not all")
	in["Entries"] = keep
	body, err := json.Marshal(in)
	require.NoError(t, err)
	return body, func(resp *http.Response) error {
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		prior, _ := out["Failed"].([]any)
		out["Failed"] = append(prior, failed...)
		if raw, err = json.Marshal(out); err != nil {
			return err
		}
		resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
		resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
		return nil
	}
}

func (p *countingProxy) record(action string, bodies ...string) {
	req := sendRequest{Action: action}
	for _, b := range bodies {
		var env struct{ ID string }
		_ = json.Unmarshal([]byte(b), &env)
		req.Events = append(req.Events, env.ID)
	}
	p.mu.Lock()
	p.requests = append(p.requests, req)
	p.mu.Unlock()
}

// sent returns the send requests recorded so far.
func (p *countingProxy) sent() []sendRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]sendRequest(nil), p.requests...)
}

func writeAWSError(w http.ResponseWriter, status int, code, fault string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Query-Error", code+";"+fault)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"__type":"com.amazonaws.sqs#`+code+`","message":"by the test proxy"}`)
}

func (p *countingProxy) release() { p.holdOnce.Do(func() { close(p.hold) }) }

func (p *countingProxy) count(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.actions[action]
}

// tcpProxy forwards TCP connections to an address. Stop makes the server
// look down (connections refused, open ones cut); Start brings it back on
// the same port.
type tcpProxy struct {
	t      testing.TB
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// newTCPProxy starts a proxy to the host of endpoint, an http URL.
func newTCPProxy(t testing.TB, endpoint string) *tcpProxy {
	t.Helper()
	u, err := url.Parse(endpoint)
	require.NoError(t, err)
	p := &tcpProxy{t: t, target: u.Host, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Stop)
	return p
}

// URL is the proxy's endpoint.
func (p *tcpProxy) URL() string { return "http://" + p.addr }

// Start listens again on the proxy's port.
func (p *tcpProxy) Start() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	p.serve(ln)
}

// Stop closes the listener and every connection, and waits for them.
func (p *tcpProxy) Stop() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // stopped meanwhile: Stop did not see these
				p.mu.Unlock()
				_, _ = in.Close(), out.Close()
				continue
			}
			p.conns[in], p.conns[out] = true, true
			p.mu.Unlock()
			p.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				_, _ = io.Copy(dst, src)
				_ = dst.Close()
				_ = src.Close()
				p.mu.Lock()
				delete(p.conns, dst)
				delete(p.conns, src)
				p.mu.Unlock()
			}
			go pipe(in, out)
			go pipe(out, in)
		}
	}()
}
