package stomp_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/sinks/stomp"
)

func TestParseAddresses(t *testing.T) {
	plain := func(h, p string) stomp.Address { return stomp.Address{Host: h, Port: p} }
	secure := func(h, p string) stomp.Address { return stomp.Address{Host: h, Port: p, TLS: true} }
	for _, tc := range []struct {
		in   string
		want []stomp.Address
		err  string
	}{
		{in: "stomp://mq.example.com:61613", want: []stomp.Address{plain("mq.example.com", "61613")}},
		{in: "stomp://useast.api.elasticpath.com", want: []stomp.Address{plain("useast.api.elasticpath.com", "61613")}},
		{in: "STOMP://MQ:1", want: []stomp.Address{plain("MQ", "1")}},
		{in: "tcp://10.0.0.1:61613/", want: []stomp.Address{plain("10.0.0.1", "61613")}},
		{in: "stomp+ssl://b-1.mq.us-east-1.amazonaws.com:61614", want: []stomp.Address{secure("b-1.mq.us-east-1.amazonaws.com", "61614")}},
		{in: "stomp+ssl://b-1.mq.us-east-1.amazonaws.com", want: []stomp.Address{secure("b-1.mq.us-east-1.amazonaws.com", "61614")}},
		{in: "ssl://mq:1", want: []stomp.Address{secure("mq", "1")}},
		{in: "127.0.0.1:61613", want: []stomp.Address{plain("127.0.0.1", "61613")}},
		{in: "localhost", want: []stomp.Address{plain("localhost", "61613")}},
		{in: "[::1]:61613", want: []stomp.Address{plain("::1", "61613")}},
		{in: "stomp://[::1]", want: []stomp.Address{plain("::1", "61613")}},
		{in: " stomp://mq:1 ", want: []stomp.Address{plain("mq", "1")}},
		{in: "failover:(stomp+ssl://b-1.mq:61614,stomp+ssl://b-2.mq:61614)", want: []stomp.Address{
			secure("b-1.mq", "61614"), secure("b-2.mq", "61614")}},
		{in: "failover:stomp://a:1,b:2", want: []stomp.Address{plain("a", "1"), plain("b", "2")}},
		{in: "stomp+ssl://mq:61617", want: []stomp.Address{secure("mq", "61617")}}, // an explicit STOMP scheme may use any port
		{in: "stomp://mq:61616", want: []stomp.Address{plain("mq", "61616")}},
		{in: "ssl://b-1.mq.us-east-1.amazonaws.com:61617", err: "[0]: port 61617 is ActiveMQ's OpenWire port, not STOMP: use the stomp+ssl:// endpoint (Amazon MQ: port 61614)"},
		{in: "tcp://mq:61616", err: "[0]: port 61616 is ActiveMQ's OpenWire port, not STOMP: use the stomp:// endpoint (ActiveMQ: port 61613)"},
		{in: "failover:(ssl://b-1.mq:61617,ssl://b-2.mq:61617)", err: "[0]: failover member 1: port 61617 is ActiveMQ's OpenWire port"},
		{in: "", err: "[0]: required"},
		{in: "http://mq:80", err: `[0]: unsupported scheme "http": use stomp://, stomp+ssl://, tcp:// or ssl://`},
		{in: "stomp://user:pass@mq:1", err: "[0]: must not hold credentials: use username and password"},
		{in: "stomp://mq:1/vhost", err: "[0]: must be host:port, without a path or options"},
		{in: "stomp://mq:1?x=1", err: "[0]: must be host:port, without a path or options"},
		{in: "stomp://mq:0", err: "[0]: port must be a number from 1 to 65535"},
		{in: "stomp://mq:+1", err: "[0]: port must be a number from 1 to 65535"},
		{in: "stomp://mq:", err: "[0]: port must be a number from 1 to 65535"},
		{in: "stomp://:61613", err: "[0]: host required"},
		{in: "stomp://m q:1", err: "[0]: invalid host"},
		{in: "::1", err: "[0]: must be host:port"},
		{in: "s t://mq", err: "[0]: invalid scheme"},
		{in: "failover:(stomp://a:1,http://b:2)", err: `[0]: failover member 2: unsupported scheme "http"`},
		{in: "failover:(stomp://a:1", err: "[0]: failover list misses its closing parenthesis"},
		{in: "failover:(stomp://a:1)?randomize=false", err: "[0]: failover options are not supported"},
		{in: "failover:(failover:(a:1))", err: "[0]: failover lists do not nest"},
		{in: "failover:()", err: "[0]: failover member 1: required"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := stomp.ParseAddresses([]string{tc.in})
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseAddresses_names_each_entry_and_keeps_order(t *testing.T) {
	got, err := stomp.ParseAddresses([]string{"a:1", "failover:(b:2,c:3)", "d:4"})
	require.NoError(t, err)
	var hosts []string
	for _, a := range got {
		hosts = append(hosts, a.Host)
	}
	assert.Equal(t, []string{"a", "b", "c", "d"}, hosts)

	_, err = stomp.ParseAddresses([]string{"a:1", "ftp://b", "c:3", "c:x"})
	require.Error(t, err)
	assert.Equal(t, "[1]: unsupported scheme \"ftp\": use stomp://, stomp+ssl://, tcp:// or ssl://\n[3]: port must be a number from 1 to 65535", err.Error())
}

func TestAddress_String(t *testing.T) {
	assert.Equal(t, "stomp://mq:61613", stomp.Address{Host: "mq", Port: "61613"}.String())
	assert.Equal(t, "stomp+ssl://[::1]:61614", stomp.Address{Host: "::1", Port: "61614", TLS: true}.String())
}
