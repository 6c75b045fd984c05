//go:build unix

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The attack replays hostile requests against the server, as someone who
// may use its management API or its ingestion token would send them, and
// fails on any 5xx, any request that hangs past its deadline, a crash, or
// a secret in any answer or in the server's log. By default it starts the
// command in-process; scripts/attack.sh runs it against the built command
// in a process of its own (SINKBUS_ATTACK_URL, SINKBUS_ATTACK_LOG), and
// restarts that process on the same data directory afterwards.

// Secrets the attack hands the server; none may come back whole. The
// tokens are the server's ($SINKBUS_API_TOKEN, $SINKBUS_INGEST_TOKEN) when
// it runs apart.
var (
	attackAPIToken    = envOr("SINKBUS_API_TOKEN", "atk-api-token-0f1e2d3c4b5a")
	attackIngestToken = envOr("SINKBUS_INGEST_TOKEN", "atk-ingest-token-5a4b3c2d1e0f")
)

const (
	attackAPIKey     = "atk-api-key-7f3a9c1e5b2d"
	attackHeaderKey  = "atk-header-9e8d7c6b5a4f"
	attackQueryToken = "atk-query-token-13579bdf"
	attackPassword   = "atk-broker-pass-1a2b3c4d"
	attackAWSSecret  = "atkAWSsecretKEY0123456789abcdefghij"
)

var attackSecrets = []string{attackAPIToken, attackIngestToken, attackAPIKey, attackHeaderKey,
	attackQueryToken, attackPassword, attackAWSSecret}

func envOr(name, value string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return value
}

// requestDeadline is the longest any answer may take.
const requestDeadline = 20 * time.Second

// target is the server under attack.
type target struct {
	t           *testing.T
	base        string
	log         func() string // the server's log so far
	readTimeout time.Duration
	client      *http.Client
	// fifo is a named pipe inside the server's path root, relative to it;
	// empty when the attack cannot make one there.
	fifo string
}

func TestAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("the attack runs without -short")
	}
	tg := attackTarget(t)
	echo := echoServer(t)

	t.Run("network guard", tg.networkGuard)
	t.Run("paths and the CA file", tg.paths)
	t.Run("cross-site requests", tg.crossSite)
	t.Run("small faults", tg.smallFaults)
	t.Run("masks", tg.masks)
	t.Run("generated bad bodies", tg.badBodies)
	t.Run("parallel creates", tg.parallelCreates)
	t.Run("echoed secrets", func(t *testing.T) { tg.echoedSecrets(t, echo) })
	t.Run("deep values", func(t *testing.T) { tg.deepValues(t, echo) })
	t.Run("half a body", tg.halfABody)

	for _, s := range attackSecrets {
		assert.NotContains(t, tg.log(), s, "the server's log holds a secret")
	}
}

// attackTarget is the server named by SINKBUS_ATTACK_URL, or the command
// started in-process on a data directory, which is restarted on it when
// the test ends: what the attack left must not keep it from starting.
func attackTarget(t *testing.T) *target {
	tg := &target{t: t, readTimeout: 2 * time.Second, client: &http.Client{Timeout: requestDeadline}}
	if base := os.Getenv("SINKBUS_ATTACK_URL"); base != "" {
		tg.base = strings.TrimSuffix(base, "/")
		logFile := os.Getenv("SINKBUS_ATTACK_LOG")
		tg.log = func() string {
			if logFile == "" {
				return ""
			}
			data, err := os.ReadFile(logFile)
			require.NoError(t, err)
			return string(data)
		}
		if d, err := time.ParseDuration(os.Getenv("SINKBUS_ATTACK_READ_TIMEOUT")); err == nil {
			tg.readTimeout = d
		}
		tg.fifo = os.Getenv("SINKBUS_ATTACK_FIFO")
		return tg
	}
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "exports"), 0o700))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "exports", "ca-fifo.pem"), 0o600))
	tg.fifo = "ca-fifo.pem"
	args := []string{"-data-dir", dir, "-api-token", attackAPIToken, "-ingest-token", attackIngestToken,
		"-read-timeout", tg.readTimeout.String()}
	srv := start(t, args...)
	tg.base, tg.log = srv.base, srv.logs.String
	t.Cleanup(func() {
		srv.stop()
		again := start(t, args...)
		status, body := again.call("GET", "/api/integrations", "", "Authorization", "Bearer "+attackAPIToken)
		assert.Equal(t, http.StatusOK, status, "after the attack, the server does not serve again: %s", body)
		again.stop()
		for _, s := range attackSecrets {
			assert.NotContains(t, again.logs.String(), s, "the restarted server's log holds a secret")
		}
	})
	return tg
}

// send sends one request; JSON unless headers say otherwise, with the API
// token unless they give another Authorization. It fails the test on a
// 5xx, a hang and a secret in the answer.
func (tg *target) send(t *testing.T, method, path, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, tg.base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+attackAPIToken)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := tg.client.Do(req)
	require.NoError(t, err, "%s %.80s: no answer within %s", method, path, requestDeadline)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	// 502 is how a manual retry reports the destination's refusal: the
	// destination's failure, not the server's.
	if !(resp.StatusCode == http.StatusBadGateway && strings.HasSuffix(path, "/retry")) {
		assert.Less(t, resp.StatusCode, 500, "%s %.80s %.200s: %s", method, path, body, data)
	}
	for _, s := range attackSecrets {
		assert.NotContains(t, string(data), s, "%s %.80s: the answer holds a secret", method, path)
	}
	return resp.StatusCode, string(data)
}

// refused sends a request the server must refuse with status, naming
// field when it is not empty, and creating nothing.
func (tg *target) refused(t *testing.T, status int, field, method, path, body string) {
	t.Helper()
	got, answer := tg.send(t, method, path, body)
	assert.Equal(t, status, got, "%s %.80s %.300s: %s", method, path, body, answer)
	if field != "" {
		assert.Contains(t, answer, `"field":"`+field+`"`, "%.300s", body)
	}
}

func (tg *target) networkGuard(t *testing.T) {
	for _, tc := range []struct{ body, field string }{
		{`{"integration_type":"webhook","configuration":{"url":"http://169.254.169.254/latest/meta-data/"}}`, "configuration.url"},
		{`{"integration_type":"webhook","configuration":{"url":"http://10.0.0.1/hooks"}}`, "configuration.url"},
		{`{"integration_type":"webhook","configuration":{"url":"http://[::ffff:127.0.0.1]:8080/api/integrations"}}`, "configuration.url"},
		{`{"integration_type":"webhook","configuration":{"url":"http://localhost:8080/api"}}`, "configuration.url"},
		{`{"integration_type":"stomp","configuration":{"addresses":["stomp://127.0.0.1:61613"],"destination":"/queue/q"}}`,
			"configuration.addresses[0]"},
		{`{"integration_type":"stomp","configuration":{"addresses":["failover:(stomp://mq.example.com,stomp://0.0.0.0:61613)"],"destination":"/queue/q"}}`,
			"configuration.addresses[0]"},
		{`{"integration_type":"aws_sqs","configuration":{"url":"https://sqs.eu-west-1.amazonaws.com/1/q","endpoint":"http://127.0.0.1:9324"}}`,
			"configuration.endpoint"},
		{`{"integration_type":"aws_sqs","configuration":{"url":"http://192.168.1.10:9324/000000000000/q","region":"eu-west-1"}}`,
			"configuration.url"},
		{`{"integration_type":"permanent","s3_parameters":{"bucket":"exports","endpoint":"http://[fd00::1]:7070"}}`,
			"s3_parameters.endpoint"},
	} {
		tg.refused(t, http.StatusBadRequest, tc.field, "POST", "/api/integrations", tc.body)
	}
}

func (tg *target) paths(t *testing.T) {
	stomp := func(caFile string) string {
		return `{"integration_type":"stomp","configuration":{"addresses":["stomp+ssl://mq.example.com"],"destination":"/queue/q",
			"tls":{"ca_file":` + quote(caFile) + `}}}`
	}
	// Each group gets one answer, whether a path exists or not: outside the
	// path root, refused before anything is opened; inside, missing or a
	// pipe that never ends, read without waiting.
	inside := []string{"missing-ca.pem"}
	if tg.fifo != "" {
		inside = append(inside, tg.fifo)
	}
	for _, group := range [][]string{{"/dev/zero", "/etc/passwd", "/nonexistent/ca.pem", "../../../../etc/hosts"}, inside} {
		var answers []string
		for _, caFile := range group {
			status, answer := tg.send(t, "POST", "/api/integrations", stomp(caFile))
			assert.Equal(t, http.StatusBadRequest, status, "%s: %s", caFile, answer)
			assert.Contains(t, answer, `"field":"configuration.tls.ca_file"`)
			answers = append(answers, answer[strings.Index(answer, `"errors"`):])
		}
		for _, a := range answers {
			assert.Equal(t, answers[0], a, "the answers tell one path from another")
		}
	}
	for _, dir := range []string{"/proc/self/evil", "/tmp/sinkbus-attack", "../../outside", "erp/../../../outside", "."} {
		tg.refused(t, http.StatusBadRequest, "configuration.dir", "POST", "/api/integrations",
			`{"integration_type":"file","configuration":{"dir":`+quote(dir)+`}}`)
		tg.refused(t, http.StatusBadRequest, "s3_parameters.spool_dir", "POST", "/api/integrations",
			`{"integration_type":"permanent","s3_parameters":{"bucket":"exports","spool_dir":`+quote(dir)+`}}`)
	}
}

func (tg *target) crossSite(t *testing.T) {
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		status, _ := tg.send(t, "POST", "/api/integrations",
			`{"id":"csrf","integration_type":"webhook","configuration":{"url":"https://attacker.example/x"}}`, "Content-Type", ct)
		assert.Equal(t, http.StatusUnsupportedMediaType, status, ct)
	}
	status, _ := tg.send(t, "GET", "/api/integrations/csrf", "")
	assert.Equal(t, http.StatusNotFound, status)
	status, _ = tg.send(t, "GET", "/api/integrations", "", "Authorization", "Bearer wrong")
	assert.Equal(t, http.StatusUnauthorized, status)

	// The admin page's forms, forged by another site at a browser that
	// holds the password: refused, nothing stopped.
	status, body := tg.send(t, "POST", "/api/integrations", `{"id":"csrf-target","integration_type":"webhook",
		"configuration":{"url":"https://partner.example/x"}}`)
	require.Equal(t, http.StatusCreated, status, body)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+attackAPIToken))
	for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://attacker.example"}} {
		status, _ = tg.send(t, "POST", "/admin/integrations/csrf-target", "do=stop", "Authorization", basic,
			"Content-Type", "application/x-www-form-urlencoded", h[0], h[1])
		assert.Equal(t, http.StatusForbidden, status, h[0])
	}
	status, body = tg.send(t, "GET", "/api/integrations/csrf-target", "")
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, `"status":"running"`)
	status, _ = tg.send(t, "DELETE", "/api/integrations/csrf-target", "")
	assert.Equal(t, http.StatusNoContent, status)
}

func (tg *target) smallFaults(t *testing.T) {
	for _, tc := range []struct{ body, field string }{
		{`{"integration_type":"webhook","configuration":{"url":"https://erp.example.com"},"delivery":{"timeout":"1000h"}}`, "delivery.timeout"},
		{`{"integration_type":"webhook","configuration":{"url":"https://erp.example.com"},"delivery":{"timeout":1e308}}`, "delivery.timeout"},
		{`{"integration_type":"webhook","configuration":{"url":"https://erp.example.com","timeout":-1e308}}`, "configuration.timeout"},
		{`{"integration_type":"webhook","configuration":{"url":"https://erp.example.com"},"concurrency":2.5}`, "concurrency"},
		{`{"integration_type":"webhook","configuration":{"url":"https://erp.example.com"},"name":"a\u0000b"}`, "name"},
	} {
		tg.refused(t, http.StatusBadRequest, tc.field, "POST", "/api/integrations", tc.body)
	}
	status, body := tg.send(t, "POST", "/api/integrations", `{"id":"atk-tmp","integration_type":"temporary",
		"callback_url":"https://erp.example.com/h","starts_at":"2019-01-17T12:00:00Z","ends_at":"2019-02-21T23:59:00Z","status":"stopped"}`)
	require.Equal(t, http.StatusOK, status, body)
	tg.refused(t, http.StatusConflict, "", "PATCH", "/api/integrations/atk-tmp", `{"callback_url":"https://other.example.com/h"}`)
	for body, field := range map[string]string{`{"from":123}`: "from", `{"to":"soon"}`: "to", `{"dry_run":"yes"}`: "dry_run"} {
		tg.refused(t, http.StatusBadRequest, field, "POST", "/api/integrations/atk-tmp/replay", body)
	}
	long := strings.Repeat("x", 30<<10)
	for _, path := range []string{"/api/integrations/" + long, "/api/integrations/atk-tmp/rejected_events/" + long} {
		status, answer := tg.send(t, "GET", path, "")
		assert.Equal(t, http.StatusNotFound, status)
		assert.Less(t, len(answer), 1024, "a long id is echoed whole")
	}
	ingest := func(value string) (int, string) {
		return tg.send(t, "POST", "/ingest", `{"data":{"uid":"atk-uid","event":"be-observer.catalog_product_create","value":`+value+`}}`,
			"Authorization", "Bearer "+attackIngestToken)
	}
	status, body = ingest(`{"sku":"A"}`)
	require.Equal(t, http.StatusOK, status, body)
	status, body = ingest(`{"sku":"B"}`)
	assert.Equal(t, http.StatusConflict, status, body)
}

func (tg *target) masks(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "..", "bus", "api", "testdata", "elastic_path_aws_sqs_response.json"))
	require.NoError(t, err)
	tg.refused(t, http.StatusBadRequest, "data.configuration.aws_access_key_id", "POST", "/api/integrations", string(body))
	status, answer := tg.send(t, "POST", "/api/integrations", `{"id":"atk-s3","integration_type":"permanent","status":"stopped",
		"s3_parameters":{"bucket":"exports","aws_access_key_id":"AKIAATTACKEXAMPLE123","aws_secret_access_key":"`+attackAWSSecret+`"}}`)
	require.Equal(t, http.StatusOK, status, answer)
	_, answer = tg.send(t, "GET", "/api/integrations/atk-s3", "")
	assert.NotContains(t, answer, "AKIAATTACKEXAMPLE123", "the access key id is shown")
}

// badBodies sends variants of every documented request body: members
// dropped, values of every wrong type, huge and deep values, cut JSON.
func (tg *target) badBodies(t *testing.T) {
	seeds, err := filepath.Glob(filepath.Join("..", "..", "bus", "api", "testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, seeds)
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	const deepMark = "<nested 10001 levels>" // encoding/json writes no such depth: put in afterwards
	wrong := []any{nil, 1e308, -1, 2.5, true, "", "\u0000", strings.Repeat("x", 200<<10), []any{}, map[string]any{},
		deepMark, "****PSYQ", "http://169.254.169.254/", "../../etc"}
	sent := 0
	for _, seed := range seeds {
		data, err := os.ReadFile(seed)
		require.NoError(t, err)
		for _, cut := range []int{1, len(data) / 2, len(data) - 1} {
			tg.send(t, "POST", "/api/integrations", string(data[:cut]))
			sent++
		}
		var doc map[string]any
		require.NoError(t, json.Unmarshal(data, &doc))
		for _, variant := range variants(doc, wrong) {
			body, err := json.Marshal(stopped(variant))
			require.NoError(t, err)
			body = bytes.ReplaceAll(body, []byte(quote(deepMark)), []byte(deep))
			if status, answer := tg.send(t, "POST", "/api/integrations", string(body)); status < 300 {
				tg.deleteCreated(t, answer)
			}
			sent++
		}
	}
	for _, body := range []string{"", "null", "[]", "{", deep, `{"data":` + deep + `}`, strings.Repeat(`{"a":`, 5000)} {
		tg.send(t, "POST", "/api/integrations", body)
		sent++
	}
	t.Logf("%d generated bodies", sent)
}

// variants returns doc with each member, at any depth, dropped or replaced
// by each wrong value.
func variants(doc map[string]any, wrong []any) []map[string]any {
	var out []map[string]any
	for k, v := range doc {
		without := clone(doc)
		delete(without, k)
		out = append(out, without)
		for _, w := range wrong {
			with := clone(doc)
			with[k] = w
			out = append(out, with)
		}
		if inner, ok := v.(map[string]any); ok {
			for _, iv := range variants(inner, wrong) {
				with := clone(doc)
				with[k] = iv
				out = append(out, with)
			}
		}
	}
	return out
}

// stopped asks that v be created stopped, unless v sets its status itself:
// a variant that is accepted must not connect to a documented host.
func stopped(v map[string]any) map[string]any {
	v = clone(v)
	if d, ok := v["data"].(map[string]any); ok {
		d = clone(d)
		if e, has := d["enabled"]; !has || e == true {
			d["enabled"] = false
		}
		v["data"] = d
		return v
	}
	if st, has := v["status"]; !has || st == "running" {
		v["status"] = "stopped"
	}
	return v
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// deleteCreated removes what a variant created, so that the next ones
// find room under the integration limit.
func (tg *target) deleteCreated(t *testing.T, answer string) {
	var created struct {
		ID   string `json:"id"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(answer), &created))
	id := created.ID + created.Data.ID
	require.NotEmpty(t, id, answer)
	status, body := tg.send(t, "DELETE", "/api/integrations/"+id, "")
	require.Equal(t, http.StatusNoContent, status, body)
}

// parallelCreates creates past the integration limit from many clients at
// once: each answer is 201 or 409, and the limit holds.
func (tg *target) parallelCreates(t *testing.T) {
	var wg sync.WaitGroup
	statuses := make(chan int, 60)
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _ := tg.send(t, "POST", "/api/integrations", fmt.Sprintf(
				`{"id":"atk-many-%d","integration_type":"webhook","status":"stopped","configuration":{"url":"https://erp.example.com/h"}}`, i))
			statuses <- status
		}()
	}
	wg.Wait()
	close(statuses)
	created := 0
	for s := range statuses {
		assert.Contains(t, []int{http.StatusCreated, http.StatusConflict}, s)
		if s == http.StatusCreated {
			created++
		}
	}
	_, list := tg.send(t, "GET", "/api/integrations", "")
	var got struct {
		Integrations []struct {
			ID string `json:"id"`
		} `json:"integrations"`
	}
	require.NoError(t, json.Unmarshal([]byte(list), &got))
	assert.LessOrEqual(t, len(got.Integrations), 25)
	for _, in := range got.Integrations {
		if strings.HasPrefix(in.ID, "atk-many-") {
			status, _ := tg.send(t, "DELETE", "/api/integrations/"+in.ID, "")
			assert.Equal(t, http.StatusNoContent, status)
		}
	}
	assert.Positive(t, created)
}

// echoServer answers every request 400 with its headers and URL, as some
// error pages do.
func echoServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL.RequestURI())
		_ = r.Header.Write(&b)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(b.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// echoedSecrets: a destination that echoes the request in its error body
// gets the integration's credentials; none of them may reach the
// integration log, its rejected events or a manual retry's answer.
func (tg *target) echoedSecrets(t *testing.T, echo *httptest.Server) {
	status, body := tg.send(t, "POST", "/api/integrations", `{"id":"atk-echo","integration_type":"webhook","observes":["be-observer.*"],
		"configuration":{"url":"`+echo.URL+`/hooks?token=`+attackQueryToken+`","api_key":"`+attackAPIKey+`",
		"headers":{"X-Api-Key":"`+attackHeaderKey+`"},"allow_private_networks":true}}`)
	require.Equal(t, http.StatusCreated, status, body)
	status, body = tg.send(t, "POST", "/ingest", `{"data":{"uid":"atk-echo-1","event":"be-observer.echo","value":{"a":1}}}`,
		"Authorization", "Bearer "+attackIngestToken)
	require.Equal(t, http.StatusOK, status, body)
	id := tg.waitRejected(t, "atk-echo")
	_, answer := tg.send(t, "GET", "/api/integrations/atk-echo/rejected_events", "")
	assert.Contains(t, answer, "[redacted]", "the echo is kept, its secrets are not")
	tg.send(t, "GET", "/api/integrations/atk-echo/log", "")
	for _, id := range []string{id, "be-observer.echo", "%3Cscript%3E"} {
		tg.send(t, "GET", "/api/integrations/atk-echo/rejected_events/"+id, "")
	}
	status, _ = tg.send(t, "POST", "/api/integrations/atk-echo/rejected_events/"+id+"/retry", "")
	assert.Equal(t, http.StatusBadGateway, status)
	status, _ = tg.send(t, "DELETE", "/api/integrations/atk-echo", "")
	assert.Equal(t, http.StatusNoContent, status)
}

// deepValues: a value nesting past the bus's limit is refused at the door;
// one at the limit, rejected by its integration, is kept in a rejected
// events file the next start reads (the restart is attackTarget's, or
// scripts/attack.sh's).
func (tg *target) deepValues(t *testing.T, echo *httptest.Server) {
	ingest := func(uid string, depth int) (int, string) {
		return tg.send(t, "POST", "/ingest", `{"data":{"uid":"`+uid+`","event":"be-observer.deep","value":`+
			strings.Repeat("[", depth)+strings.Repeat("]", depth)+`}}`, "Authorization", "Bearer "+attackIngestToken)
	}
	status, body := ingest("atk-deep-9998", 9998)
	assert.Equal(t, http.StatusBadRequest, status, body)
	status, body = tg.send(t, "POST", "/api/integrations", `{"id":"atk-deep","integration_type":"webhook","observes":["be-observer.deep"],
		"configuration":{"url":"`+echo.URL+`","allow_private_networks":true}}`)
	require.Equal(t, http.StatusCreated, status, body)
	status, body = ingest("atk-deep-100", 100)
	require.Equal(t, http.StatusOK, status, body)
	id := tg.waitRejected(t, "atk-deep")
	status, body = tg.send(t, "GET", "/api/integrations/atk-deep/rejected_events/"+id, "")
	assert.Equal(t, http.StatusOK, status, body)
}

// waitRejected waits until integration id has a rejected event, and
// returns its event id.
func (tg *target) waitRejected(t *testing.T, id string) string {
	t.Helper()
	deadline := time.Now().Add(requestDeadline)
	for {
		_, body := tg.send(t, "GET", "/api/integrations/"+id+"/rejected_events", "")
		var got struct {
			RejectedEvents []struct {
				ID string `json:"id"`
			} `json:"rejected_events"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &got), body)
		if len(got.RejectedEvents) > 0 {
			return got.RejectedEvents[0].ID
		}
		require.True(t, time.Now().Before(deadline), "no rejected event in %s: %s", id, body)
		time.Sleep(20 * time.Millisecond) // polling the server
	}
}

// halfABody sends headers and half a body, then nothing: the server must
// close the connection at its read timeout.
func (tg *target) halfABody(t *testing.T) {
	for _, path := range []string{"/api/integrations", "/ingest"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimPrefix(tg.base, "http://"), "https://"))
		require.NoError(t, err)
		_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Authorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n{\"data\":", path, attackIngestToken)
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(tg.readTimeout+requestDeadline)))
		_, err = io.ReadAll(conn)
		var ne net.Error
		if assert.False(t, asNetError(err, &ne) && ne.Timeout(), "%s: the half-sent request holds its connection", path) {
			conn.Close()
		}
	}
}

func asNetError(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
