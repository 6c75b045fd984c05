// Package sqs is the aws_sqs sink: a Watermill message.Publisher that sends
// each event to one Amazon SQS queue (or an SQS-compatible server), as
// Elastic Path's aws_sqs integrations do.
//
// The body of every SQS message is the event envelope (sinks.AppendEnvelope);
// the attributes carry the event id, name, tenant and replay flag, and the
// user metadata as long as SQS's ten attributes allow (see Marshaler). FIFO
// queues get a MessageGroupId from Config.FIFOGroupKey and the event id as
// MessageDeduplicationId, so a redelivered event is stored once.
//
// It builds on watermill-aws's sqs package (its Marshaler and Unmarshaler
// shapes, queue creation input) but sends with the AWS SDK directly:
// watermill-aws's Publisher sends with context.Background(), one
// SendMessage per message, puts every metadata key into an attribute and has
// no FIFO ids. Here every request is bound to the message's context,
// concurrent sends are coalesced into SendMessageBatch requests, and each
// failure is classified once (see Classify). Its queue URL resolvers map a
// Publish topic to a queue; this sink has one configured queue URL and
// ignores the topic. A watermill-aws Subscriber reads what the sink sends
// with Unmarshaler, and with TransparentUrlResolver the same queue URL as
// its topic.
package sqs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsqs "github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/sinkbus/sinkbus/internal/awsclient"
	"github.com/sinkbus/sinkbus/sinks"
)

// Publisher sends messages to the configured queue, whatever the topic
// passed to Publish. Publish is safe for concurrent use; Close is
// idempotent and waits for the sends in progress.
type Publisher struct {
	client   *sqs.Client
	idle     interface{ CloseIdleConnections() } // nil when unknown
	queue    queueURL
	group    groupKey
	maxSize  int
	create   bool
	wait     time.Duration
	callers  int // env.Concurrency: the most Publish calls the bus makes at once
	logger   watermill.LoggerAdapter
	createMu sync.Mutex

	mu     sync.Mutex
	closed bool
	active sync.WaitGroup // Publish calls in progress
	done   chan struct{}  // closed when Close has finished

	// Batching only: Publish hands entries to dispatch over in; dispatch
	// hands batches to idle senders over batches; a batch send reports its
	// end over sent; quit stops dispatch and the senders, and dispatch
	// closes stopped once they are gone.
	in      chan []*entry
	batches chan []*entry
	sent    chan int // entries of the finished batch
	quit    chan struct{}
	stopped chan struct{}
	senders sync.WaitGroup
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher validates c and builds the sink. It makes no request: a
// missing queue or refused credentials show up as permanent Publish errors.
//
// env.Concurrency is the most Publish calls the bus makes at once; the sink
// counts the callers actually there (see batchReady) and uses it as their
// upper bound. env.Clock is not used: the batching wait (Config.BatchWait,
// milliseconds) runs on the wall clock, because a test's fake clock, which
// moves only when told, would hold every send that waits for companions,
// and no test means to step through a sink's request coalescing.
func NewPublisher(c Config, env sinks.Env) (*Publisher, error) {
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	env = env.Defaults()
	q, _ := parseQueueURL(c.URL)
	group, _ := parseGroupKey(c.FIFOGroupKey)
	region := c.Region
	if region == "" {
		region = q.region
	}
	endpoint := q.origin
	if c.Endpoint != "" {
		endpoint, _ = parseEndpoint(c.Endpoint)
	}

	p := &Publisher{
		queue:   q,
		group:   group,
		maxSize: c.MaxMessageSize,
		create:  c.CreateQueue,
		wait:    c.BatchWait.D(),
		callers: env.Concurrency,
		logger:  env.Logger.With(watermill.LogFields{"sqs_queue": q.name}),
		done:    make(chan struct{}),
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(region),
		// One retry layer: the bus retries with its own backoff, from the
		// class this sink reports; SDK retries would hide failures from it.
		awsconfig.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
	}
	if c.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("sinkbus: sqs: load the AWS configuration: %w", err)
	}
	httpClient, err := awsclient.HTTPClient(awsCfg, c.AllowPrivateNetworks, func(t *http.Transport) {
		if env.Concurrency > t.MaxIdleConnsPerHost {
			t.MaxIdleConnsPerHost = env.Concurrency
		}
		if env.Concurrency > t.MaxIdleConns {
			t.MaxIdleConns = env.Concurrency
		}
	})
	if err != nil {
		return nil, err
	}
	p.idle, _ = httpClient.(interface{ CloseIdleConnections() })
	p.client = sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
		o.HTTPClient = httpClient
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	if *c.Batch {
		p.in = make(chan []*entry)
		p.batches = make(chan []*entry)
		p.sent = make(chan int)
		p.quit = make(chan struct{})
		p.stopped = make(chan struct{})
		go p.dispatch()
	}
	return p, nil
}

// Publish sends msgs to the queue and returns when SQS has accepted them
// all. Each request is bound to its message's context. After Close it
// returns sinks.ErrClosed.
//
// With one message (as the bus calls it) the error is that message's. With
// several, they may share requests, and some may be in the queue when
// others failed: the error is then a *PublishError naming the messages to
// send again, which Classify sees as its Err (a retryable failure before a
// permanent one, so that a retry resends). A caller that resends the whole
// call instead resends the accepted ones too: a FIFO queue drops them
// (their deduplication id is the message UUID, for five minutes); readers
// of a standard queue dedupe on the sinkbus_id attribute, as with any
// at-least-once delivery.
//
// On a FIFO queue the messages of one call are sent in the order given,
// one request after another, and none after one that failed, so that a
// retry does not put them behind later ones.
func (p *Publisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return sinks.ErrClosed
	}
	p.active.Add(1)
	p.mu.Unlock()
	defer p.active.Done()

	errs := make([]error, len(msgs))
	entries := make([]*entry, 0, len(msgs))
	index := make([]int, 0, len(msgs)) // message index of each entry
	for i, msg := range msgs {
		e, err := p.newEntry(msg)
		if err != nil {
			errs[i] = err
			continue
		}
		entries = append(entries, e)
		index = append(index, i)
	}
	for j, err := range p.send(entries) {
		errs[index[j]] = err
	}
	return publishError(msgs, errs)
}

// send sends entries and returns their outcomes, in order.
func (p *Publisher) send(entries []*entry) []error {
	errs := make([]error, len(entries))
	switch {
	case len(entries) == 0:
	case p.queue.fifo && len(entries) > 1:
		p.sendInOrder(entries, errs)
	case p.in == nil:
		for i, e := range entries {
			errs[i] = p.sendOne(e.ctx, e)
		}
	default:
		select {
		case p.in <- entries:
			for i, e := range entries {
				errs[i] = p.result(e)
			}
		case <-entries[0].ctx.Done():
			for i := range entries {
				errs[i] = p.ctxErr(entries[0].ctx)
			}
		}
	}
	return errs
}

// sendInOrder sends the entries of one Publish to a FIFO queue: in batches
// (single messages without batching) one after another, and after a failed
// entry none of the rest, which fail with ErrNotSent.
func (p *Publisher) sendInOrder(entries []*entry, errs []error) {
	for i := 0; i < len(entries); {
		n, size := 1, entries[i].size
		for p.in != nil && i+n < len(entries) && n < MaxBatchEntries && size+entries[i+n].size <= p.maxSize {
			size += entries[i+n].size
			n++
		}
		p.sendBatch(entries[i : i+n])
		failed := false
		for j := i; j < i+n; j++ {
			errs[j] = <-entries[j].done
			failed = failed || errs[j] != nil
		}
		if i += n; failed {
			for ; i < len(entries); i++ {
				errs[i] = &Error{Queue: p.queue.name, Err: ErrNotSent}
			}
		}
	}
}

// publishError is the error of a Publish of msgs whose outcomes are errs.
func publishError(msgs []*message.Message, errs []error) error {
	var (
		first, retryable error
		failed           []*message.Message
		failures         []error
	)
	for i, err := range errs {
		if err == nil {
			continue
		}
		failed, failures = append(failed, msgs[i]), append(failures, err)
		if first == nil {
			first = err
		}
		if c, _ := sinks.Classify(err); retryable == nil && c != sinks.ClassPermanent {
			retryable = err
		}
	}
	if first == nil {
		return nil
	}
	if retryable == nil {
		retryable = first
	}
	if len(msgs) == 1 {
		return retryable
	}
	return &PublishError{Failed: failed, Errs: failures, Err: retryable}
}

// Close stops accepting messages and waits for the sends in progress, which
// their messages' contexts bound. Further calls wait for the first.
func (p *Publisher) Close() error {
	p.mu.Lock()
	first := !p.closed
	p.closed = true
	p.mu.Unlock()
	if !first {
		<-p.done
		return nil
	}
	p.active.Wait()
	if p.quit != nil {
		close(p.quit)
		<-p.stopped
	}
	if p.idle != nil {
		p.idle.CloseIdleConnections()
	}
	close(p.done)
	return nil
}

// entry is one message on its way: its send request and whom to tell.
type entry struct {
	ctx  context.Context
	req  types.SendMessageBatchRequestEntry // Id is set per batch
	size int
	done chan error // buffered: a sender never waits for the caller
}

func (p *Publisher) newEntry(msg *message.Message) (*entry, error) {
	// Sized so that the envelope (payload plus a few short fields) usually
	// takes one allocation rather than a doubling series.
	body := sinks.AppendEnvelope(make([]byte, 0, len(msg.Payload)+256), msg)
	attrs, attrSize := attributes(msg)
	size := len(body) + attrSize
	if size > p.maxSize {
		return nil, tooLarge(size, p.maxSize)
	}
	e := &entry{
		ctx:  msg.Context(),
		size: size,
		done: make(chan error, 1),
		req:  types.SendMessageBatchRequestEntry{MessageBody: aws.String(string(body)), MessageAttributes: attrs},
	}
	if p.queue.fifo {
		dedup := msg.UUID
		if dedup == "" {
			dedup = string(body)
		}
		e.req.MessageGroupId = aws.String(p.group.group(msg))
		e.req.MessageDeduplicationId = aws.String(fifoID(dedup))
	}
	return e, nil
}

// result waits for e's outcome or its context, whichever comes first.
func (p *Publisher) result(e *entry) error {
	select {
	case err := <-e.done:
		return err
	default:
	}
	select {
	case err := <-e.done:
		return err
	case <-e.ctx.Done():
		return p.ctxErr(e.ctx)
	}
}

func (p *Publisher) ctxErr(ctx context.Context) error {
	return &Error{Queue: p.queue.name, Err: ctx.Err()}
}

func (p *Publisher) classify(err error) error {
	err = Classify(err)
	var e *Error
	if errors.As(err, &e) && e.Queue == "" {
		e.Queue = p.queue.name
	}
	return err
}

// dispatch groups entries into batches. A batch goes out when it is full
// (MaxBatchEntries or maxSize bytes); when no caller that is there can join
// it (see batchReady), so that a lone send, or callers taking turns as an
// order key makes them, wait for nothing; or when its first entry has
// waited p.wait. Callers whose batch has just ended usually come straight
// back with their next event: waiting for them (never longer than p.wait)
// gathers them in one request, where sending at once would split them into
// groups that each pay a request.
//
// The waits use the wall clock, not the bus's: see NewPublisher.
func (p *Publisher) dispatch() {
	defer close(p.stopped)
	var (
		pending  []*entry
		size     int
		inflight int // batches
		busy     int // entries in flight
		owed     int // entries whose send ended lately and whose callers are not back
		lastDone time.Time
		timer    *time.Timer
		timeout  <-chan time.Time
	)
	flush := func() {
		if timer != nil {
			timer.Stop()
			timer, timeout = nil, nil
		}
		if len(pending) == 0 {
			return
		}
		batch := pending
		pending, size = nil, 0
		inflight++
		busy += len(batch)
		select {
		case p.batches <- batch: // an idle sender
		default:
			p.senders.Add(1)
			go p.sender(batch)
		}
	}
	for {
		select {
		case entries := <-p.in:
			if owed > 0 && time.Since(lastDone) >= p.wait {
				owed = 0 // they are not coming back soon
			}
			owed = max(owed-len(entries), 0)
			for _, e := range entries {
				if size+e.size > p.maxSize {
					flush()
				}
				pending = append(pending, e)
				size += e.size
				if len(pending) == MaxBatchEntries {
					flush()
				}
			}
			switch {
			case len(pending) == 0:
			case batchReady(p.callers, len(pending), busy, owed):
				flush()
			case timer == nil:
				timer = time.NewTimer(p.wait)
				timeout = timer.C
			}
		case <-timeout:
			timer, timeout = nil, nil
			flush()
		case n := <-p.sent:
			inflight--
			busy -= n
			owed = min(owed+n, p.callers)
			lastDone = time.Now()
			if len(pending) > 0 && batchReady(p.callers, len(pending), busy, owed) {
				flush()
			}
		case <-p.quit:
			// Every Publish has returned: nobody waits for what is pending.
			for ; inflight > 0; inflight-- {
				<-p.sent
			}
			p.senders.Wait()
			if timer != nil {
				timer.Stop()
			}
			return
		}
	}
}

// sender sends batch, then each batch dispatch hands it, until quit. It
// outlives its batch because a new goroutine would grow its stack anew
// through the SDK's deep middleware stack on every request.
func (p *Publisher) sender(batch []*entry) {
	defer p.senders.Done()
	for {
		p.sendBatch(batch)
		p.sent <- len(batch)
		select {
		case batch = <-p.batches:
		case <-p.quit:
			return
		}
	}
}

// batchReady reports whether a batch of pending entries should go without
// waiting for companions. The callers there are those waiting in it
// (pending), those in flight (busy) and those whose send ended lately and
// who are expected back (owed), never more than callers (env.Concurrency):
// the bus makes fewer calls at once when its backlog is short, an order key
// holds events back or some wait for a retry, and a batch that waited for
// all env.Concurrency would wait p.wait every time. It goes when every
// caller there but those in flight has joined it, and those in flight
// could not all share its request when they come back.
func batchReady(callers, pending, busy, owed int) bool {
	there := min(callers, pending+busy+owed)
	return pending >= there-busy && (busy == 0 || there > MaxBatchEntries)
}

// sendBatch sends entries and gives each its own outcome.
func (p *Publisher) sendBatch(entries []*entry) {
	live := entries[:0]
	for _, e := range entries {
		if e.ctx.Err() != nil {
			e.done <- p.ctxErr(e.ctx)
		} else {
			live = append(live, e)
		}
	}
	switch len(live) {
	case 0:
		return
	case 1:
		live[0].done <- p.sendOne(live[0].ctx, live[0])
		return
	}

	ctx, release := batchContext(live)
	defer release()
	in := &sqs.SendMessageBatchInput{QueueUrl: &p.queue.raw, Entries: make([]types.SendMessageBatchRequestEntry, len(live))}
	for i, e := range live {
		in.Entries[i] = e.req
		in.Entries[i].Id = aws.String(strconv.Itoa(i))
	}
	out, err := p.client.SendMessageBatch(ctx, in)
	err = p.classify(err)
	if p.create && queueMissing(err) {
		if err = p.createQueue(ctx); err == nil {
			out, err = p.client.SendMessageBatch(ctx, in)
			err = p.classify(err)
		}
	}
	if err != nil {
		if c, _ := sinks.Classify(err); c == sinks.ClassPermanent && !concernsQueue(err) {
			// One entry may have sunk the whole request: send each alone,
			// so that only its own caller fails; in order on a FIFO queue.
			p.logger.Debug("Batch refused, sending its entries one by one", watermill.LogFields{"err": err.Error()})
			if p.queue.fifo {
				for _, e := range live {
					e.done <- p.sendOne(e.ctx, e)
				}
				return
			}
			var wg sync.WaitGroup
			for _, e := range live {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e.done <- p.sendOne(e.ctx, e)
				}()
			}
			wg.Wait()
			return
		}
		for _, e := range live {
			e.done <- err
		}
		return
	}

	answered := make([]bool, len(live))
	answer := func(id *string, err error) {
		i, convErr := strconv.Atoi(aws.ToString(id))
		if convErr != nil || i < 0 || i >= len(live) || answered[i] {
			return
		}
		answered[i] = true
		live[i].done <- err
	}
	for _, s := range out.Successful {
		answer(s.Id, nil)
	}
	for _, f := range out.Failed {
		fault := smithy.FaultServer
		if f.SenderFault {
			fault = smithy.FaultClient
		}
		answer(f.Id, p.classify(&smithy.GenericAPIError{Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), Fault: fault}))
	}
	for i, e := range live {
		if !answered[i] {
			e.done <- &Error{Queue: p.queue.name, Err: errors.New("SQS returned no result for this message")}
		}
	}
}

// sendOne sends e alone, bound to ctx.
func (p *Publisher) sendOne(ctx context.Context, e *entry) error {
	in := &sqs.SendMessageInput{
		QueueUrl:               &p.queue.raw,
		MessageBody:            e.req.MessageBody,
		MessageAttributes:      e.req.MessageAttributes,
		MessageGroupId:         e.req.MessageGroupId,
		MessageDeduplicationId: e.req.MessageDeduplicationId,
	}
	_, err := p.client.SendMessage(ctx, in)
	err = p.classify(err)
	if p.create && queueMissing(err) {
		if err = p.createQueue(ctx); err == nil {
			_, err = p.client.SendMessage(ctx, in)
			err = p.classify(err)
		}
	}
	return err
}

// createQueue creates the configured queue; one creation at a time, as
// every send that found it missing asks.
func (p *Publisher) createQueue(ctx context.Context) error {
	p.createMu.Lock()
	defer p.createMu.Unlock()
	in, err := wsqs.GenerateCreateQueueInputDefault(ctx, wsqs.QueueName(p.queue.name),
		wsqs.QueueConfigAttributes{FifoQueue: wsqs.QueueConfigAttributesBool(p.queue.fifo)})
	if err != nil {
		return p.classify(err)
	}
	_, err = p.client.CreateQueue(ctx, in)
	var exists *types.QueueNameExists
	if errors.As(err, &exists) { // created meanwhile, with other attributes
		return nil
	}
	if err != nil {
		return p.classify(err)
	}
	p.logger.Info("Created SQS queue", nil)
	return nil
}

// batchContext returns a context for a request that sends several callers'
// messages: it carries the first one's values and ends when every caller
// has stopped waiting, not when the first one has.
func batchContext(entries []*entry) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(entries[0].ctx))
	var left atomic.Int32
	left.Store(int32(len(entries)))
	stops := make([]func() bool, len(entries))
	for i, e := range entries {
		stops[i] = context.AfterFunc(e.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
