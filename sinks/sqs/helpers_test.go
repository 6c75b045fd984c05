package sqs_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
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
	return sqs.Config{URL: url, Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test"}
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

// subscriber is a watermill-aws Subscriber that reads what the sink sent.
func subscriber(t testing.TB, endpoint string) *wsqs.Subscriber {
	t.Helper()
	sub, err := wsqs.NewSubscriber(wsqs.SubscriberConfig{
		AWSConfig:                   awsConfig(t),
		OptFns:                      []func(*awssqs.Options){withEndpoint(endpoint)},
		DoNotCreateQueueIfNotExists: true,
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

// readBack subscribes to queue and returns its first n messages, acked.
func readBack(t testing.TB, sub message.Subscriber, queue string, n int) []*message.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := sub.Subscribe(ctx, queue)
	require.NoError(t, err)
	var got []*message.Message
	for len(got) < n {
		select {
		case m := <-ch:
			m.Ack()
			got = append(got, m)
		case <-ctx.Done():
			t.Fatalf("read %d of %d messages from %s", len(got), n, queue)
		}
	}
	return got
}

func queueName(queueURL string) string { return queueURL[strings.LastIndex(queueURL, "/")+1:] }

// countingProxy forwards to endpoint and counts requests per SQS action.
// While hold is set, it keeps the first request it sees until release.
type countingProxy struct {
	URL     string
	mu      sync.Mutex
	actions map[string]int

	// reject, when set, answers a request with SQS's InvalidParameterValue
	// error instead of forwarding it, when it returns true.
	reject func(action, body string) bool

	hold     chan struct{} // closed by release
	holdOnce sync.Once
	held     chan struct{} // closed when the first request is held
}

func newCountingProxy(t testing.TB, endpoint string, holdFirst bool) *countingProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &countingProxy{actions: map[string]int{}, hold: make(chan struct{}), held: make(chan struct{})}
	if !holdFirst {
		p.release()
	}
	var first sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
		p.mu.Lock()
		p.actions[action]++
		p.mu.Unlock()
		isFirst := false
		first.Do(func() { isFirst = true })
		if isFirst && holdFirst {
			close(p.held)
			<-p.hold
		}
		if p.reject != nil {
			body, err := io.ReadAll(r.Body)
			require.NoError(t, err)
			if p.reject(action, string(body)) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				w.Header().Set("X-Amzn-Query-Error", "InvalidParameterValue;Sender")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"__type":"com.amazonaws.sqs#InvalidParameterValue","message":"rejected by the test proxy"}`)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(p.release)
	p.URL = srv.URL
	return p
}

func (p *countingProxy) release() { p.holdOnce.Do(func() { close(p.hold) }) }

func (p *countingProxy) count(action string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.actions[action]
}

// privateServer is an SQS server of the test's own, which it may stop and
// start again on the same port.
type privateServer struct {
	t        testing.TB
	js, port string
	Endpoint string
	cmd      *exec.Cmd
}

func newPrivateServer(t testing.TB) *privateServer {
	t.Helper()
	js := testenv.Server(t, "SINKBUS_SQS_SERVER_JS")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).AddrPort().Port()
	require.NoError(t, l.Close())
	s := &privateServer{t: t, js: js, port: strconv.Itoa(int(port))}
	s.Endpoint = "http://127.0.0.1:" + s.port
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start runs the server and returns once it says it listens.
func (s *privateServer) Start() {
	s.t.Helper()
	cmd := exec.Command("node", s.js, s.port)
	out, err := cmd.StdoutPipe()
	require.NoError(s.t, err)
	require.NoError(s.t, cmd.Start())
	s.cmd = cmd
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if !ok && strings.Contains(sc.Text(), "listening") {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		require.True(s.t, ok, "the private SQS server exited before listening")
	case <-time.After(15 * time.Second):
		s.t.Fatal("the private SQS server did not start in 15s")
	}
}

// Stop kills the server and waits for it to exit.
func (s *privateServer) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
