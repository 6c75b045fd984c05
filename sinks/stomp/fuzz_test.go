package stomp_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks/stomp"
)

func FuzzParseAddresses(f *testing.F) {
	for _, s := range []string{
		"stomp://mq:61613", "stomp+ssl://b-1.mq.us-east-1.amazonaws.com:61614", "ssl://mq", "tcp://[::1]:1",
		"127.0.0.1:61613", "localhost", "failover:(stomp+ssl://a:61614,stomp+ssl://b:61614)", "failover:a:1,b:2",
		"http://mq", "stomp://user:s3cr3tpassword@mq:1", "stomp://mq:1/x?y#z", "failover:(", "[::1", "stomp://[]:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addrs, err := stomp.ParseAddresses([]string{s})
		if err != nil {
			if strings.Contains(s, "s3cr3t") && strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("error quotes the address: %v", err)
			}
			if len(s) >= 24 && strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes the address: %v", err)
			}
			return
		}
		if len(addrs) == 0 {
			t.Fatal("no address and no error")
		}
		for _, a := range addrs {
			if a.Host == "" || a.Port == "" {
				t.Fatalf("incomplete address %#v", a)
			}
			// An address prints as one that parses back to itself.
			again, err := stomp.ParseAddresses([]string{a.String()})
			if err != nil || len(again) != 1 || again[0] != a {
				t.Fatalf("%#v prints as %q, which parses as %#v, %v", a, a.String(), again, err)
			}
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{
		elasticPathJSON,
		`{"addresses":["stomp+ssl://mq:61614"],"destination":"/queue/q","username":"u","password":"s3cr3t-pass","connections":4}`,
		`{"addresses":["failover:(a:1,b:2)"],"destination":"/topic/t","receipt_timeout":"2s","heartbeat_send":-1,"tls":{"insecure_skip_verify":true}}`,
		`{"addresses":"s3cr3t","password":["s3cr3t"]}`,
		`{"password":"s3cr3t\n","vhost":"\u0000"}`,
		`{"addresses":[1,2]}`, `[]`, `null`, `{"connections":1e99}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := stomp.Type.Decode(json.RawMessage(data))
		if err != nil {
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("decode error quotes a value: %v", err)
			}
			return
		}
		cfg := *c.(*stomp.Config)
		if err := c.Validate(); err != nil {
			for _, fe := range field.Errors(err) {
				if fe.(*field.Error).Rule == "" {
					t.Fatalf("problem without a rule: %v", err)
				}
			}
			if cfg.Password != "" && len(cfg.Password) >= 6 && strings.Contains(err.Error(), cfg.Password) {
				t.Fatalf("validation error quotes the password: %v", err)
			}
		}
		m := c.Masked().(stomp.Config)
		if len(cfg.Password) >= 12 && strings.Contains(m.Password, cfg.Password[:len(cfg.Password)-4]) {
			t.Fatalf("masked password shows the secret: %q", m.Password)
		}
	})
}
