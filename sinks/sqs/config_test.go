package sqs_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/sinks"
	"github.com/sinkbus/sinkbus/sinks/sqs"
)

// The request example of Elastic Path's aws_sqs integration.
const elasticPathConfiguration = `{
	"url": "https://sqs.eu-west-1.amazonaws.com/123456789/epcc-external-queue",
	"aws_access_key_id": "ASIAJLVYNHUWCPKOPSYQ",
	"aws_secret_access_key": "mgJteE7dZgSLC2eo2vKsAUWRSnchrWzCRnoDpUSJ",
	"region": "eu-west-1"
}`

func TestConfig_decodes_and_masks_the_elastic_path_example(t *testing.T) {
	c, err := sinks.NewRegistry(sqs.Type).Decode("aws_sqs", json.RawMessage(elasticPathConfiguration))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	assert.Equal(t, "aws_sqs", c.Type())
	assert.Equal(t, &sqs.Config{
		URL:             "https://sqs.eu-west-1.amazonaws.com/123456789/epcc-external-queue",
		AccessKeyID:     "ASIAJLVYNHUWCPKOPSYQ",
		SecretAccessKey: "mgJteE7dZgSLC2eo2vKsAUWRSnchrWzCRnoDpUSJ",
		Region:          "eu-west-1",
	}, c)

	masked, err := json.Marshal(c.Masked())
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"url": "https://sqs.eu-west-1.amazonaws.com/123456789/epcc-external-queue",
		"aws_access_key_id": "****PSYQ",
		"aws_secret_access_key": "****pUSJ",
		"region": "eu-west-1"
	}`, string(masked))
	assert.Equal(t, "ASIAJLVYNHUWCPKOPSYQ", c.(*sqs.Config).AccessKeyID, "Masked returns a copy")
}

func TestConfig_decode_refuses_unknown_fields(t *testing.T) {
	_, err := sqs.Type.Decode(json.RawMessage(`{"url":"x","queue":"y"}`))
	require.Error(t, err)
	assert.Equal(t, "queue: unknown field", err.Error())
	_, err = sqs.Type.Decode(json.RawMessage(`{"url":"x","batch":"yes"}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "batch: must be a boolean")
}

func TestConfig_validate(t *testing.T) {
	const secret = "Sup3rSecretValueThatMustNotLeak"
	aws := "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
	local := "http://127.0.0.1:9324/123456789012/orders"
	tests := []struct {
		name   string
		config sqs.Config
		want   []string // problems, in order
	}{
		{"elastic path example", sqs.Config{URL: aws, AccessKeyID: "AKIA", SecretAccessKey: secret, Region: "eu-west-1"}, nil},
		{"region from the URL", sqs.Config{URL: aws}, nil},
		{"legacy host", sqs.Config{URL: "https://eu-west-1.queue.amazonaws.com/123456789012/orders"}, nil},
		{"legacy global host", sqs.Config{URL: "https://queue.amazonaws.com/123456789012/orders", Region: "us-east-1"}, nil},
		{"china", sqs.Config{URL: "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/orders"}, nil},
		{"fifo", sqs.Config{URL: aws + ".fifo", FIFOGroupKey: "payload.order.id"}, nil},
		{"group by name", sqs.Config{URL: aws + ".fifo", FIFOGroupKey: "name"}, nil},
		{"local server", sqs.Config{URL: local, Region: "us-east-1", Endpoint: "http://127.0.0.1:9324/"}, nil},
		{"all options", sqs.Config{URL: aws, CreateQueue: true, BatchWait: sinks.Duration(time.Second),
			MaxMessageSize: sqs.MaxMessageSizeLimit, SessionToken: secret, AccessKeyID: "AKIA", SecretAccessKey: secret}, nil},
		{"name of 80", sqs.Config{URL: aws[:strings.LastIndex(aws, "/")+1] + strings.Repeat("q", 80)}, nil},
		{"fifo name of 80", sqs.Config{URL: aws[:strings.LastIndex(aws, "/")+1] + strings.Repeat("q", 75) + ".fifo"}, nil},

		{"empty", sqs.Config{}, []string{"url: required"}},
		{"not a URL", sqs.Config{URL: "orders"}, []string{"url: must be an SQS queue URL such as https://sqs.eu-west-1.amazonaws.com/123456789012/orders"}},
		{"ftp", sqs.Config{URL: "ftp://sqs.eu-west-1.amazonaws.com/1/q"}, []string{"url: must be an SQS queue URL such as https://sqs.eu-west-1.amazonaws.com/123456789012/orders"}},
		{"no account", sqs.Config{URL: "https://sqs.eu-west-1.amazonaws.com/orders"}, []string{"url: must be an SQS queue URL such as https://sqs.eu-west-1.amazonaws.com/123456789012/orders"}},
		{"credentials in the URL", sqs.Config{URL: "https://AKIA:" + secret + "@sqs.eu-west-1.amazonaws.com/1/q"}, []string{"url: must be an SQS queue URL such as https://sqs.eu-west-1.amazonaws.com/123456789012/orders"}},
		{"bad name", sqs.Config{URL: aws + "!"}, []string{"url: queue name must be 1 to 80 letters, digits, hyphens or underscores, .fifo suffix included"}},
		{"name of 81", sqs.Config{URL: aws[:strings.LastIndex(aws, "/")+1] + strings.Repeat("q", 81)}, []string{"url: queue name must be 1 to 80 letters, digits, hyphens or underscores, .fifo suffix included"}},
		{"fifo name of 81", sqs.Config{URL: aws[:strings.LastIndex(aws, "/")+1] + strings.Repeat("q", 76) + ".fifo"}, []string{"url: queue name must be 1 to 80 letters, digits, hyphens or underscores, .fifo suffix included"}},
		{"no region", sqs.Config{URL: local}, []string{"region: required when the URL does not name one"}},
		{"other region", sqs.Config{URL: aws, Region: "us-east-1"}, []string{"region: must be the region the URL names (eu-west-1)"}},
		{"bad region", sqs.Config{URL: local, Region: "Europe"}, []string{"region: must be an AWS region such as eu-west-1"}},
		{"key without secret", sqs.Config{URL: aws, AccessKeyID: "AKIA"}, []string{"aws_secret_access_key: required with aws_access_key_id"}},
		{"secret without key", sqs.Config{URL: aws, SecretAccessKey: secret}, []string{"aws_access_key_id: required with aws_secret_access_key"}},
		{"token alone", sqs.Config{URL: aws, SessionToken: secret}, []string{"aws_session_token: requires aws_access_key_id and aws_secret_access_key"}},
		{"endpoint with a path", sqs.Config{URL: aws, Endpoint: "http://127.0.0.1:9324/sqs"}, []string{"endpoint: must be an http or https URL without a path, such as http://127.0.0.1:9324"}},
		{"group key", sqs.Config{URL: aws, FIFOGroupKey: "order_id"}, []string{`fifo_group_key: must be "tenant", "name" or "payload.<field>"`}},
		{"empty payload path", sqs.Config{URL: aws, FIFOGroupKey: "payload."}, []string{`fifo_group_key: must be "tenant", "name" or "payload.<field>"`}},
		{"empty path segment", sqs.Config{URL: aws, FIFOGroupKey: "payload.a..b"}, []string{`fifo_group_key: must be "tenant", "name" or "payload.<field>"`}},
		{"batch wait", sqs.Config{URL: aws, BatchWait: sinks.Duration(2 * time.Second)}, []string{"batch_wait: must be between 0 and 1s"}},
		{"negative batch wait", sqs.Config{URL: aws, BatchWait: -1}, []string{"batch_wait: must be between 0 and 1s"}},
		{"small messages", sqs.Config{URL: aws, MaxMessageSize: 100}, []string{"max_message_size: must be between 1024 and 1048576 bytes"}},
		{"huge messages", sqs.Config{URL: aws, MaxMessageSize: 2 << 20}, []string{"max_message_size: must be between 1024 and 1048576 bytes"}},
		{"everything at once", sqs.Config{URL: local, SecretAccessKey: secret, FIFOGroupKey: "x", MaxMessageSize: 1}, []string{
			"region: required when the URL does not name one",
			"aws_access_key_id: required with aws_secret_access_key",
			`fifo_group_key: must be "tenant", "name" or "payload.<field>"`,
			"max_message_size: must be between 1024 and 1048576 bytes",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.config.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var got []string
			for _, fe := range field.Errors(err) {
				got = append(got, fe.Error())
			}
			assert.Equal(t, tt.want, got)
			assert.NotContains(t, err.Error(), secret)
		})
	}
}

func TestConfig_masks_every_credential(t *testing.T) {
	c := sqs.Config{URL: "https://sqs.eu-west-1.amazonaws.com/1/q", AccessKeyID: "AKIAEXAMPLEKEYID0001",
		SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", SessionToken: "IQoJb3JpZ2luX2VjEXAMPLETOKEN"}
	m := c.Masked().(sqs.Config)
	assert.Equal(t, "****0001", m.AccessKeyID)
	assert.Equal(t, "****EKEY", m.SecretAccessKey)
	assert.Equal(t, "****OKEN", m.SessionToken)
	assert.Equal(t, c.URL, m.URL)
}

func TestNewPublisher_refuses_an_invalid_config(t *testing.T) {
	_, err := sqs.NewPublisher(sqs.Config{URL: "nope"}, sinks.Env{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "url: must be an SQS queue URL")
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte(elasticPathConfiguration))
	f.Add([]byte(`{"url":"http://127.0.0.1:9324/123456789012/q.fifo","region":"us-east-1","fifo_group_key":"payload.a.b","batch":false,"batch_wait":"5ms","max_message_size":1048576,"create_queue":true}`))
	f.Add([]byte(`{"url":"https://queue.amazonaws.com/1/q","endpoint":"https://vpce-1.sqs.us-east-1.vpce.amazonaws.com","batch_wait":0.5}`))
	f.Add([]byte(`{"url":"https://sqs.eu-west-1.amazonaws.com/1/q","aws_session_token":"x"}`))
	f.Add([]byte(`{"url":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := sqs.Type.Decode(data)
		if err != nil {
			return
		}
		verr := c.Validate()
		m := c.Masked().(sqs.Config)
		for _, secret := range []string{c.(*sqs.Config).SecretAccessKey, c.(*sqs.Config).SessionToken} {
			if len(secret) >= 12 {
				assert.NotContains(t, m.SecretAccessKey+m.SessionToken, secret)
			}
		}
		if verr != nil {
			for _, fe := range field.Errors(verr) {
				assert.NotEmpty(t, fe.(*field.Error).Field, "problem without a field: %v", fe)
			}
			return
		}
		// What Validate accepts, the constructor builds.
		p, err := c.NewPublisher(sinks.Env{})
		require.NoError(t, err)
		require.NoError(t, p.Close())
	})
}
