// Command server is a small commerce application built on sinkbus: an
// orders API that publishes order.* events, with sinkbus's three HTTP
// handlers mounted beside it:
//
//	POST /orders                  create an order        → order.created
//	GET  /orders/{id}             read it
//	POST /orders/{id}/fulfil      ship it                → order.fulfilled
//	POST /orders/{id}/cancel      cancel it              → order.cancelled
//	     /api/integrations...     the management API (bus/api)
//	     /api/tenants/{tenant}/integrations...
//	GET  /admin/                  the admin page (bus/admin), in a browser: the password is
//	                              -api-token's or a tenant's token, any user name
//	POST /ingest                  the ingestion webhook (bus/ingest), bearer token
//	GET  /metrics                 Prometheus metrics (bus/metrics)
//	POST /demo/webhook            a webhook receiver to point integrations at;
//	GET  /demo/webhook            what it received, signatures verified
//
// It listens on loopback by default and keeps everything in memory, so
// that each run starts afresh: the bus holds the last 64 MiB of events
// (replay.DefaultMemoryBytes), and a restart loses the events not yet
// delivered. -data-dir keeps the bus's state (not the orders) across
// restarts.
//
// The shop hosts tenants: -tenant-tokens gives each tenant a bearer token
// with which it manages its own integrations on /api and publishes its own
// events on /ingest, seeing nothing of the others'. -api-token is the
// application's own (the administrator's) on /api, -ingest-token on
// /ingest, where its events are -tenant's. One access.Identify hook per
// handler maps a token to its caller:
//
//	go run ./examples/server -ingest-token dev-token -api-token admin-token \
//	    -tenant-tokens acme=acme-token,globex=globex-token
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/bus/access"
	"github.com/sinkbus/sinkbus/bus/admin"
	"github.com/sinkbus/sinkbus/bus/api"
	"github.com/sinkbus/sinkbus/bus/ingest"
	"github.com/sinkbus/sinkbus/bus/metrics"
	"github.com/sinkbus/sinkbus/replay"
	_ "github.com/sinkbus/sinkbus/sinks/all" // the management API takes integrations of every built-in type
)

// config is the command line.
type config struct {
	addr         string
	dataDir      string
	integrations string // a JSON or YAML file of the integrations the server owns
	tenant       string
	tenantTokens map[string]string // tenant → its bearer token
	ingestToken  string
	ingestEvents string
	apiToken     string
	demoSecret   string
	allowPrivate bool
	// readTimeout bounds reading a whole request, body included: a client
	// that sends headers and half a body cannot hold a connection.
	readTimeout time.Duration
}

// Server timeouts besides -read-timeout. The write timeout leaves room for
// a manual retry of a rejected event, which waits for one delivery attempt
// (at most the 5 minutes an integration's timeout may be).
const (
	readHeaderTimeout = 10 * time.Second
	writeTimeout      = 6 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address (loopback by default)")
	fs.StringVar(&c.dataDir, "data-dir", "", "directory keeping the journal, integrations, logs and rejected events across restarts (default: in memory, like the orders)")
	fs.StringVar(&c.integrations, "integrations", "", "JSON (or .yaml) file of the integrations the server owns, in any of the API's shapes, reconciled at every start")
	fs.StringVar(&c.tenant, "tenant", "demo-shop", "tenant of the order events")
	fs.StringVar(&c.ingestToken, "ingest-token", os.Getenv("SINKBUS_INGEST_TOKEN"), "bearer token of /ingest (default $SINKBUS_INGEST_TOKEN; empty: /ingest refuses every request)")
	fs.StringVar(&c.ingestEvents, "ingest-events", "be-observer.*", "comma-separated event patterns /ingest accepts")
	fs.StringVar(&c.apiToken, "api-token", os.Getenv("SINKBUS_API_TOKEN"), "the administrator's bearer token of /api, reaching every tenant's integrations (default $SINKBUS_API_TOKEN; empty, without -tenant-tokens: no authentication)")
	fs.Func("tenant-tokens", "comma-separated tenant=token pairs: each token manages its tenant's integrations on /api and publishes its tenant's events on /ingest (default $SINKBUS_TENANT_TOKENS)",
		func(v string) (err error) {
			c.tenantTokens, err = parseTenantTokens(v)
			return err
		})
	fs.BoolVar(&c.allowPrivate, "allow-private-networks", true, "let integrations that ask for it deliver to loopback and private addresses (the demo receiver is on loopback)")
	fs.StringVar(&c.demoSecret, "demo-secret", "SOME_SECRET_KEY", "secret /demo/webhook verifies signatures with (Elastic Path's example secret_key)")
	fs.DurationVar(&c.readTimeout, "read-timeout", 30*time.Second, "longest a client may take to send a whole request, body included")
	if v := os.Getenv("SINKBUS_TENANT_TOKENS"); v != "" {
		var err error
		if c.tenantTokens, err = parseTenantTokens(v); err != nil {
			return c, fmt.Errorf("$SINKBUS_TENANT_TOKENS: %w", err)
		}
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.readTimeout <= 0 {
		fmt.Fprintln(stderr, "-read-timeout must be positive")
		return c, errors.New("-read-timeout must be positive")
	}
	for tenant, token := range c.tenantTokens {
		if token == c.apiToken || token == c.ingestToken {
			err := fmt.Errorf("-tenant-tokens: %s's token is also -api-token or -ingest-token", tenant)
			fmt.Fprintln(stderr, err)
			return c, err
		}
	}
	return c, nil
}

// parseTenantTokens reads "acme=acme-token,globex=globex-token".
func parseTenantTokens(v string) (map[string]string, error) {
	out := map[string]string{}
	seen := map[string]bool{}
	for _, pair := range strings.Split(v, ",") {
		tenant, token, ok := strings.Cut(strings.TrimSpace(pair), "=")
		switch {
		case !ok || token == "":
			return nil, fmt.Errorf("%q: want tenant=token", pair)
		case bus.ValidateTenant(tenant) != nil:
			return nil, fmt.Errorf("%q: not a tenant name (letters, digits, '.', '_', '-')", tenant)
		case out[tenant] != "" || seen[token]:
			return nil, fmt.Errorf("%q: a tenant or a token given twice", pair)
		}
		out[tenant], seen[token] = token, true
	}
	return out, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger, nil); err != nil {
		logger.Error("server stopped", "error", err)
		os.Exit(1)
	}
}

// run serves until ctx is done; ready, when set, gets the address it
// listens on.
func run(ctx context.Context, cfg config, logger *slog.Logger, ready func(addr string)) error {
	m, err := metrics.New(metrics.Config{})
	if err != nil {
		return err
	}
	activity := admin.NewActivity() // the admin page's deliveries of the last hour
	b, err := bus.New(bus.Config{DataDir: cfg.dataDir, Observer: bus.Observers(m, activity), Logger: logger,
		AllowPrivateNetworks: cfg.allowPrivate})
	if err != nil {
		return err
	}
	defer b.Close()
	m.Watch(b)
	if cfg.integrations != "" {
		if err := reconcile(ctx, b, cfg.integrations, logger); err != nil {
			return err
		}
	}

	// One caller per token: a tenant's token is that tenant on /api and on
	// /ingest; the application has a token of its own on each.
	apiCallers, ingestCallers := map[string]access.Caller{}, map[string]access.Caller{}
	for tenant, token := range cfg.tenantTokens {
		apiCallers[token], ingestCallers[token] = access.Tenant(tenant), access.Tenant(tenant)
	}
	if cfg.apiToken != "" {
		apiCallers[cfg.apiToken] = access.Admin()
	}
	if cfg.ingestToken != "" {
		ingestCallers[cfg.ingestToken] = access.Admin()
	}
	if len(ingestCallers) == 0 {
		logger.Warn("/ingest refuses every request: set -ingest-token or -tenant-tokens")
	}
	ingestCaller, err := access.Bearer(ingestCallers) // no token: accepts nothing
	if err != nil {
		return err
	}
	ing, err := ingest.New(b, ingest.Options{
		Caller: ingestCaller,
		Events: strings.Split(cfg.ingestEvents, ","),
		Tenant: cfg.tenant,
		Logger: logger,
	})
	if err != nil {
		return err
	}
	demo, err := newDemoReceiver(cfg.demoSecret, logger)
	if err != nil {
		return err
	}

	apiOpts := api.Options{Caller: access.Anyone(access.Admin()), Logger: logger}
	if len(apiCallers) > 0 {
		if apiOpts.Caller, err = access.Bearer(apiCallers); err != nil {
			return err
		}
	}
	mgmt, err := api.New(b, apiOpts)
	if err != nil {
		return err
	}
	// The admin page takes the same callers as /api, the token given as the
	// password of a browser's basic authentication.
	pageOpts := admin.Options{Caller: apiOpts.Caller, Activity: activity, Logger: logger}
	if len(apiCallers) > 0 {
		pageOpts.Caller = passwordAuth(apiOpts.Caller)
	}
	page, err := admin.New(b, pageOpts)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", challenge(pageOpts.Caller, http.StripPrefix("/admin", page)))
	newOrders(b, cfg.tenant).routes(mux)
	mux.Handle("/api/", http.StripPrefix("/api", mgmt))
	mux.Handle("POST /ingest", ing)
	mux.Handle("GET /metrics", m.Handler())
	mux.Handle("/livez", b.HealthHandler()) // Kubernetes' liveness probe
	mux.Handle("/readyz", b.HealthHandler())
	mux.Handle("/demo/webhook", demo)

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	if len(apiCallers) == 0 {
		warnOpenAPI(logger, ln.Addr())
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: min(readHeaderTimeout, cfg.readTimeout),
		ReadTimeout:       cfg.readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	busErr := make(chan error, 1)
	go func() { busErr <- b.Run(runCtx) }()
	<-b.Running()
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	if cfg.dataDir == "" {
		logger.Warn(fmt.Sprintf("running in memory: the journal holds at most the last %d MiB of events, "+
			"and a restart loses every event not yet delivered, the integrations and their logs; -data-dir DIR keeps them on disk",
			replay.DefaultMemoryBytes>>20))
	}
	logger.Info("serving", "url", "http://"+ln.Addr().String(), "data_dir", cfg.dataDir)
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err = <-srvErr:
	case err = <-busErr:
	}
	shutdownCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	err = errors.Join(err, srv.Shutdown(shutdownCtx))
	// What the orders published before is delivered before the bus closes.
	if werr := b.WaitDelivered(shutdownCtx); werr != nil {
		logger.Warn("closing before every event published was delivered", "error", werr)
	}
	cancel()
	err = errors.Join(err, b.Close())
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// warnOpenAPI says, as loudly as a log can, that the management API takes
// requests from anyone who reaches addr: they may create integrations that
// deliver every event anywhere (and, with -allow-private-networks, to this
// host's own services).
func warnOpenAPI(logger *slog.Logger, addr net.Addr) {
	who := "any process on this machine"
	if !isLoopback(addr) {
		who = "anyone who can reach " + addr.String()
	}
	logger.Warn("!!! THE MANAGEMENT API HAS NO AUTHENTICATION !!! " + who +
		" may create integrations that send every event anywhere; set -api-token (or $SINKBUS_API_TOKEN)")
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// passwordAuth identifies a browser by the password of its basic
// authentication, taken for the bearer token of /api (whatever the user
// name): a browser asks for it and sends it again with every request.
func passwordAuth(bearer access.Identify) access.Identify {
	return func(r *http.Request) (access.Caller, error) {
		_, password, ok := r.BasicAuth()
		if !ok {
			return access.Caller{}, access.ErrUnauthenticated
		}
		return bearer(&http.Request{Header: http.Header{"Authorization": {"Bearer " + password}}})
	}
}

// challenge asks the browser for a password when the request has none
// that who knows; the page answers it 401.
func challenge(who access.Identify, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := who(r); errors.Is(err, access.ErrUnauthenticated) {
			w.Header().Set("WWW-Authenticate", `Basic realm="sinkbus admin", charset="UTF-8"`)
		}
		next.ServeHTTP(w, r)
	})
}
