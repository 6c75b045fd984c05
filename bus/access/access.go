// Package access says who calls sinkbus's HTTP handlers. An application
// gives the management API (bus/api) and the ingestion webhook (bus/ingest)
// one Identify hook that maps a request to its Caller, from the
// application's own authentication (an API key, a JWT claim): a tenant, or
// the application itself as administrator. Every handler then works within
// that caller's scope: a tenant reaches its own integrations only, and
// publishes its own events only.
//
//	who := func(r *http.Request) (access.Caller, error) {
//		claims, err := verifyJWT(r)
//		if err != nil {
//			return access.Caller{}, access.ErrUnauthenticated
//		}
//		if claims.Admin {
//			return access.Admin(), nil
//		}
//		return access.Tenant(claims.Store), nil
//	}
//	mgmt, _ := api.New(b, api.Options{Caller: who})
//	in, _ := ingest.New(b, ingest.Options{Caller: who})
//
// The zero Caller is nobody: handlers refuse it, so that a hook that forgets
// to say who called fails closed.
package access

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sinkbus/sinkbus/bus"
	"github.com/sinkbus/sinkbus/field"
	"github.com/sinkbus/sinkbus/internal/textcut"
)

// ErrUnauthenticated is what an Identify hook returns (wrapped or not) for
// a request that does not say who sent it: handlers answer 401. Any other
// error is answered 403. The error's text is not shown to the caller.
var ErrUnauthenticated = errors.New("sinkbus: unauthenticated")

// ErrNobody is Caller.Validate's error for the zero Caller.
var ErrNobody = errors.New("sinkbus: the caller is nobody (the zero access.Caller)")

// Caller is who sent a request: a tenant, or the application as
// administrator. Make one with Tenant or Admin; the zero Caller is nobody.
type Caller struct {
	tenant string
	admin  bool
}

// Admin is the application itself: it reaches every tenant's integrations
// (bus.Bus.Integrations) and the application's own.
func Admin() Caller { return Caller{admin: true} }

// Tenant is tenant name: it reaches that tenant's integrations only
// (bus.Integrations.Tenant) and publishes that tenant's events. name must
// be a valid tenant (bus.ValidateTenant); handlers refuse a Caller whose
// name is not.
func Tenant(name string) Caller { return Caller{tenant: name} }

// IsAdmin reports whether c is the application as administrator.
func (c Caller) IsAdmin() bool { return c.admin }

// Tenant returns c's tenant: "" for the administrator and for nobody.
func (c Caller) Tenant() string { return c.tenant }

// Validate reports whether c is somebody: the administrator, or a tenant
// of a valid name.
func (c Caller) Validate() error {
	switch {
	case c.admin:
		return nil
	case c.tenant == "":
		return ErrNobody
	}
	if err := bus.ValidateTenant(c.tenant); err != nil {
		return fmt.Errorf("sinkbus: caller: %w", field.Prefix("tenant", err))
	}
	return nil
}

// String is "admin", "tenant <name>" or "nobody".
func (c Caller) String() string {
	switch {
	case c.admin:
		return "admin"
	case c.tenant == "":
		return "nobody"
	}
	return "tenant " + c.tenant
}

// Integrations returns the view of b's integrations that c may use: every
// integration for the administrator, the tenant's for a tenant. Nobody's
// view, and that of an invalid tenant, fails at every call.
func (c Caller) Integrations(b *bus.Bus) *bus.Integrations {
	if c.admin {
		return b.Integrations()
	}
	return b.Integrations().Tenant(c.tenant)
}

// Identify maps a request to its caller, from the application's own
// authentication, or refuses it: an error that is (or wraps)
// ErrUnauthenticated is answered 401, any other 403. It must not read the
// request's body.
type Identify func(r *http.Request) (Caller, error)

// Check asks the hook who sent r and checks its answer: the caller, or
// the hook's error. A caller that is nobody or an invalid tenant is the
// hook's mistake: Check logs it on logger at error level, with the
// request's method and path and attrs, and refuses the request with an
// error other than ErrUnauthenticated. Handlers answer an error that is
// (or wraps) ErrUnauthenticated 401, any other 403.
func (id Identify) Check(r *http.Request, logger *slog.Logger, attrs ...any) (Caller, error) {
	c, err := id(r)
	if err != nil {
		return Caller{}, err
	}
	if err := c.Validate(); err != nil {
		logger.Error("The Caller hook gave an invalid caller; request refused",
			append([]any{"error", err, "method", r.Method, "path", textcut.Cut(r.URL.Path, 128)}, attrs...)...)
		return Caller{}, err
	}
	return c, nil
}

// Anyone takes every request for c, without authentication: Anyone(Admin())
// is a management API open to whoever reaches it (behind something that
// authenticates, or in tests).
func Anyone(c Caller) Identify {
	return func(*http.Request) (Caller, error) { return c, nil }
}

// Bearer identifies requests by their "Authorization: Bearer <token>"
// header: each token of tokens is its caller (two tokens may be one
// caller's, during a rotation). Tokens are compared in constant time; a
// request without a known token is ErrUnauthenticated. It refuses an empty
// token and a caller that is nobody or an invalid tenant.
func Bearer(tokens map[string]Caller) (Identify, error) {
	var p field.Problems
	type entry struct {
		sum    [32]byte
		caller Caller
	}
	entries := make([]entry, 0, len(tokens))
	for token, c := range tokens {
		if token == "" {
			p.Add("tokens", "an empty token")
			continue
		}
		if err := c.Validate(); err != nil {
			p.Add("tokens", "a token's caller: %s", strings.TrimPrefix(err.Error(), "sinkbus: "))
			continue
		}
		entries = append(entries, entry{sha256.Sum256([]byte(token)), c})
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return func(r *http.Request) (Caller, error) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || got == "" {
			return Caller{}, ErrUnauthenticated
		}
		// Hashing first makes each comparison independent of the lengths;
		// every token is compared, so the time tells nothing of which.
		sum := sha256.Sum256([]byte(got))
		var found Caller
		match := 0
		for _, e := range entries {
			if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
				found, match = e.caller, 1
			}
		}
		if match != 1 {
			return Caller{}, ErrUnauthenticated
		}
		return found, nil
	}, nil
}
