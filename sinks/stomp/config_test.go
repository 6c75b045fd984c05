package stomp_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

// The configuration object of Elastic Path's stomp integration example.
const elasticPathJSON = `{
	"addresses": ["stomp://useast.api.elasticpath.com"],
	"destination": "/queue/queue1",
	"username": "user1",
	"password": "*******d123"
}`

func TestConfig_decodes_elastic_path_json(t *testing.T) {
	reg := sinks.NewRegistry(stomp.Type)
	c, err := reg.Decode("stomp", json.RawMessage(elasticPathJSON))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	assert.Equal(t, "stomp", c.Type())
	assert.Equal(t, &stomp.Config{
		Addresses:   []string{"stomp://useast.api.elasticpath.com"},
		Destination: "/queue/queue1",
		Username:    "user1",
		Password:    "*******d123",
	}, c)
}

func TestConfig_decodes_every_option(t *testing.T) {
	c, err := stomp.Type.Decode(json.RawMessage(`{
		"addresses": ["failover:(stomp+ssl://b-1.mq.eu-west-1.amazonaws.com:61614,stomp+ssl://b-2.mq.eu-west-1.amazonaws.com:61614)"],
		"destination": "/queue/orders", "username": "u", "password": "p", "vhost": "shop",
		"connections": 8, "heartbeat_send": "5s", "heartbeat_receive": -1,
		"connect_timeout": 3, "receipt_timeout": "2s", "reconnect_wait": "500ms",
		"max_reconnect_wait": "20s", "reconnect_jitter": "50ms", "max_reconnects": 10,
		"tls": {"ca_file": "/etc/ca.pem", "server_name": "mq.example.com", "insecure_skip_verify": true}
	}`))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	assert.Equal(t, &stomp.Config{
		Addresses:        []string{"failover:(stomp+ssl://b-1.mq.eu-west-1.amazonaws.com:61614,stomp+ssl://b-2.mq.eu-west-1.amazonaws.com:61614)"},
		Destination:      "/queue/orders",
		Username:         "u",
		Password:         "p",
		VHost:            "shop",
		Connections:      8,
		HeartBeatSend:    sinks.Duration(5 * time.Second),
		HeartBeatReceive: sinks.Duration(-time.Second),
		ConnectTimeout:   sinks.Duration(3 * time.Second),
		ReceiptTimeout:   sinks.Duration(2 * time.Second),
		ReconnectWait:    sinks.Duration(500 * time.Millisecond),
		MaxReconnectWait: sinks.Duration(20 * time.Second),
		ReconnectJitter:  sinks.Duration(50 * time.Millisecond),
		MaxReconnects:    10,
		TLS:              stomp.TLS{CAFile: "/etc/ca.pem", ServerName: "mq.example.com", InsecureSkipVerify: true},
	}, c)
}

func TestConfig_decode_errors_name_the_field(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"adresses": []}`, "adresses: unknown field"},
		{`{"addresses": "stomp://h"}`, "addresses: must be an array"},
		{`{"password": 42}`, "password: must be a string"},
		{`{"receipt_timeout": "soon"}`, "must be a duration"},
		{`{"connections": "4"}`, "connections: must be an integer"},
		{`{"tls": {"ca": "x"}}`, "ca: unknown field"}, // field.DecodeStrict names nested fields by their own name
	} {
		t.Run(tc.json, func(t *testing.T) {
			_, err := stomp.Type.Decode(json.RawMessage(tc.json))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestConfig_validate(t *testing.T) {
	valid := func() stomp.Config {
		return stomp.Config{Addresses: []string{"stomp://mq:61613"}, Destination: "/queue/q"}
	}
	for _, tc := range []struct {
		name   string
		change func(*stomp.Config)
		want   []string
	}{
		{"valid", func(*stomp.Config) {}, nil},
		{"empty", func(c *stomp.Config) { *c = stomp.Config{} }, []string{
			"addresses: at least one address required", "destination: required"}},
		{"bad addresses", func(c *stomp.Config) { c.Addresses = []string{"stomp://ok:1", "http://x:1", "mq:99999"} }, []string{
			`addresses[1]: unsupported scheme "http": use stomp://, stomp+ssl://, tcp:// or ssl://`,
			"addresses[2]: port must be a number from 1 to 65535"}},
		{"header injection", func(c *stomp.Config) {
			c.Username, c.Password, c.VHost, c.Destination = "u\nx", "p\r\nlogin:admin", "/\x00", "/queue/q\nreceipt:1"
		}, []string{
			"destination: must not contain control characters", "password: must not contain control characters",
			"username: must not contain control characters", "vhost: must not contain control characters"}},
		{"password without username", func(c *stomp.Config) { c.Password = "p" }, []string{"username: required with password"}},
		{"connections", func(c *stomp.Config) { c.Connections = 65 }, []string{"connections: must be between 1 and 64 (0: default)"}},
		{"negative timeouts", func(c *stomp.Config) {
			c.ConnectTimeout, c.ReceiptTimeout, c.ReconnectWait, c.MaxReconnectWait = -1, -1, -1, -1
		}, []string{
			"connect_timeout: must not be negative", "receipt_timeout: must not be negative",
			"reconnect_wait: must not be negative", "max_reconnect_wait: must not be negative"}},
		{"timeouts and heart-beats below a second", func(c *stomp.Config) {
			ms := sinks.Duration(time.Millisecond)
			c.ConnectTimeout, c.ReceiptTimeout, c.HeartBeatSend, c.HeartBeatReceive = 200*ms, 999*ms, 10*ms, 500*ms
		}, []string{
			"connect_timeout: must be at least 1s (0: default)", "receipt_timeout: must be at least 1s (0: default)",
			"heartbeat_send: must be at least 1s (0: default, negative: off)",
			"heartbeat_receive: must be at least 1s (0: default, negative: off)"}},
		{"one second is enough", func(c *stomp.Config) {
			s := sinks.Duration(time.Second)
			c.ConnectTimeout, c.ReceiptTimeout, c.HeartBeatSend, c.HeartBeatReceive = s, s, s, s
		}, nil},
		{"amazon mq openwire endpoint", func(c *stomp.Config) {
			c.Addresses = []string{"ssl://b-1234-1.mq.eu-west-1.amazonaws.com:61617"}
		}, []string{
			"addresses[0]: port 61617 is ActiveMQ's OpenWire port, not STOMP: use the stomp+ssl:// endpoint (Amazon MQ: port 61614)"}},
		{"negative heart-beats and jitter turn them off", func(c *stomp.Config) {
			c.HeartBeatSend, c.HeartBeatReceive, c.ReconnectJitter, c.MaxReconnects = -1, -1, -1, -1
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			err := c.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var got []string
			for _, e := range field.Errors(err) {
				got = append(got, e.Error())
			}
			sort.Strings(got)
			sort.Strings(tc.want)
			assert.Equal(t, tc.want, got)
			assert.NotContains(t, err.Error(), "login:admin", "a rule never quotes a value")
		})
	}
}

func TestConfig_masked_hides_the_password(t *testing.T) {
	c := stomp.Config{Addresses: []string{"stomp://mq"}, Destination: "/queue/q", Username: "user1",
		Password: "mgJteE7dZgSLC2eo2vKsAUWRSnchrWzCRnoDpUSJ"}
	m := c.Masked().(stomp.Config)
	assert.Equal(t, "****pUSJ", m.Password)
	assert.Equal(t, "user1", m.Username)
	assert.Equal(t, "mgJteE7dZgSLC2eo2vKsAUWRSnchrWzCRnoDpUSJ", c.Password, "the original is untouched")
	b, err := json.Marshal(m)
	require.NoError(t, err)
	assert.False(t, strings.Contains(string(b), "mgJte"))
	assert.NotContains(t, string(b), `"tls"`, "a zero TLS is left out")
}
