package stomp_test

import (
	"errors"
	"testing"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// The brokers' own words, as RabbitMQ 3.10, ActiveMQ 5.17 and Artemis put
// them in ERROR frames.
func TestStompSink_classifies_broker_errors(t *testing.T) {
	for _, tc := range []struct {
		name          string
		atConnect     bool
		message, body string
		want          sinks.Class
	}{
		{"rabbitmq bad login", true, "Bad CONNECT", "Access refused for user 'guest'\n", sinks.ClassPermanent},
		{"rabbitmq unknown vhost", true, "Bad CONNECT", "Virtual host '127.0.0.1' access denied", sinks.ClassPermanent},
		{"activemq bad login", true, "User name [sinkbus] or password is invalid.", "User name [sinkbus] or password is invalid.", sinks.ClassPermanent},
		{"artemis bad login", true, "Security Error occurred: AMQ229031: Unable to validate user from /127.0.0.1:5000. Username: u", "", sinks.ClassPermanent},
		{"connect refused for another reason", true, "Bad CONNECT", "Processing error", sinks.ClassRetryable},
		{"connect limit", true, "Connection refused: maximum number of connections reached", "", sinks.ClassRetryable},
		{"rabbitmq unknown destination type", false, "Unknown destination", "'/bogus/x' is not a valid destination.\nValid destination types are: /temp-queue, /exchange, /topic, /queue, /amq/queue, /reply-queue/.\n", sinks.ClassPermanent},
		{"rabbitmq missing exchange", false, "not_found", "NOT_FOUND - no exchange 'missing-ex' in vhost '/'", sinks.ClassPermanent},
		{"rabbitmq write refused", false, "access_refused", "ACCESS_REFUSED - access to exchange 'amq.topic' in vhost '/' refused for user 'u'", sinks.ClassPermanent},
		{"rabbitmq queue arguments differ", false, "precondition_failed", "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q'", sinks.ClassPermanent},
		{"activemq write refused", false, "User sinkbus is not authorized to write to: queue://sinkbus.forbidden", "java.lang.SecurityException: User sinkbus is not authorized\n\tat org.apache...", sinks.ClassPermanent},
		{"activemq illegal destination", false, "Illegal destination name: [x] -- ActiveMQ STOMP destinations must begin with one of: /queue/ /topic/", "", sinks.ClassPermanent},
		{"frame too large", false, "Frame too large", "", sinks.ClassPermanent},
		{"broker busy", false, "Processing error", "Processing error", sinks.ClassRetryable},
		{"broker internal error", false, "Internal error", "", sinks.ClassRetryable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBroker(t)
			reply := brokerError(tc.message, tc.body)
			if tc.atConnect {
				b.onConnect = func(int, *frame.Frame) *frame.Frame { return reply }
			} else {
				b.errReply = reply
				b.onSend = func(int, *frame.Frame) sendAction { return errorFrame }
			}
			p := newSink(t, stomp.Config{Addresses: []string{b.addr()}, Destination: "/queue/q", Connections: 1, HeartBeatReceive: -1}, sinks.Env{})

			err := p.Publish("", event("order.created", "", `{}`))
			require.Error(t, err)
			class, _ := sinks.Classify(err)
			assert.Equal(t, tc.want, class, "%v", err)
			assert.Contains(t, err.Error(), tc.message, "the broker's message is in the error")
			var se *stomp.Error
			require.True(t, errors.As(err, &se))
			if tc.atConnect {
				require.ErrorIs(t, err, stomp.ErrNotConnected)
			}
		})
	}
}

func TestStompSink_classifies_connection_failures(t *testing.T) {
	t.Run("dropped during the send", func(t *testing.T) {
		b := newFakeBroker(t)
		b.onSend = func(int, *frame.Frame) sendAction { return dropConn }
		p := newSink(t, stomp.Config{Addresses: []string{b.addr()}, Destination: "/queue/q", Connections: 1, HeartBeatReceive: -1}, sinks.Env{})
		err := p.Publish("", event("order.created", "", `{}`))
		require.ErrorIs(t, err, stomp.ErrConnectionLost)
		class, _ := sinks.Classify(err)
		assert.Equal(t, sinks.ClassRetryable, class)
	})
	t.Run("nothing listens", func(t *testing.T) {
		p := newSink(t, stomp.Config{Addresses: []string{closedAddr(t)}, Destination: "/queue/q", Connections: 1}, sinks.Env{})
		err := p.Publish("", event("order.created", "", `{}`))
		require.ErrorIs(t, err, stomp.ErrNotConnected)
		class, _ := sinks.Classify(err)
		assert.Equal(t, sinks.ClassRetryable, class)
	})
}
