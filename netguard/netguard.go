// Package netguard is the one network guard of every sink: the check that
// keeps an integration from reaching loopback, private, link-local and other
// internal addresses (the host's own services, the cloud's metadata
// endpoint, the application's network) unless it is allowed to.
//
// The guard acts at dial time, on the very address about to be connected
// after DNS resolution (a net.Dialer Control function), so a name cannot
// resolve to a public address when checked and to an internal one when used.
// Every sink that connects anywhere dials through it: the webhook sink's
// HTTP transport, the STOMP sink's connections, and the AWS SDK HTTP clients
// of the sqs and s3 sinks. CheckHost judges a host as written, so that a
// literal internal address can be refused when an integration is created
// rather than at its first delivery.
package netguard

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// ErrBlocked is wrapped by every *BlockedError.
var ErrBlocked = errors.New("sinkbus: destination address not allowed")

// BlockedError is a destination the guard refuses: an internal address, and
// private networks not allowed. Sinks report it as a permanent failure.
type BlockedError struct {
	// Addr is the refused address, without zone; invalid when the host was
	// refused by name (localhost).
	Addr netip.Addr
	// Host is the host as written when it was refused by name.
	Host string
	// Rule names the range the address is in: "loopback", "private", ...
	Rule string
}

func (e *BlockedError) Error() string {
	dest := e.Host
	if e.Addr.IsValid() {
		dest = e.Addr.String()
	}
	return "sinkbus: destination " + dest + " is a " + e.Rule +
		" address; allow_private_networks allows it where the application allows" +
		" private networks (bus.Config.AllowPrivateNetworks)"
}

// Unwrap returns ErrBlocked.
func (e *BlockedError) Unwrap() error { return ErrBlocked }

type blockedRange struct {
	prefix netip.Prefix
	rule   string
}

var blockedRanges = func() []blockedRange {
	ranges := []struct{ rule, prefix string }{
		{"loopback", "127.0.0.0/8"},
		{"loopback", "::1/128"},
		{"unspecified", "0.0.0.0/8"}, // 0.0.0.0 reaches the local host on Linux
		{"unspecified", "::/128"},
		{"private", "10.0.0.0/8"},
		{"private", "172.16.0.0/12"},
		{"private", "192.168.0.0/16"},
		{"private", "fc00::/7"},
		{"link-local", "169.254.0.0/16"}, // 169.254.169.254: cloud metadata
		{"link-local", "fe80::/10"},
		{"shared (CGNAT)", "100.64.0.0/10"},
		{"multicast", "224.0.0.0/4"},
		{"multicast", "ff00::/8"},
		{"reserved", "240.0.0.0/4"}, // includes broadcast
	}
	out := make([]blockedRange, len(ranges))
	for i, r := range ranges {
		out[i] = blockedRange{netip.MustParsePrefix(r.prefix), r.rule}
	}
	return out
}()

// nat64 is the well-known NAT64 prefix: its last 32 bits are an IPv4 address
// a NAT64 gateway would reach.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Check returns a *BlockedError when addr is internal, nil otherwise.
func Check(addr netip.Addr) error {
	// A zoned address ("fe80::1%eth0", "::1%lo") is in no netip.Prefix, and
	// an IPv4-mapped one ("::ffff:127.0.0.1") is not in the IPv4 ranges:
	// judge the bare address the kernel will connect to.
	addr = addr.WithZone("").Unmap()
	if nat64.Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(addr) {
			return &BlockedError{Addr: addr, Rule: r.rule}
		}
	}
	return nil
}

// CheckHost judges a host as a configuration writes it (a name, an IP
// literal, a bracketed IPv6 literal, with or without a zone): a
// *BlockedError for an internal literal address and for localhost names
// (RFC 6761: they always resolve to loopback), nil for other names, which
// only the dial-time check can judge.
func CheckHost(host string) error {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if addr, err := netip.ParseAddr(h); err == nil {
		return Check(addr)
	}
	name := strings.ToLower(strings.TrimSuffix(h, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return &BlockedError{Host: host, Rule: "loopback"}
	}
	return nil
}

// Control is a net.Dialer Control function refusing internal addresses. It
// runs after DNS resolution and before connect, on the very address about
// to be dialled.
func Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedError{Host: address, Rule: "unparsable"}
	}
	return Check(ap.Addr())
}

// Guard makes d refuse internal addresses, unless allowPrivate, and returns
// it. It replaces d's Control and ControlContext. An HTTP transport dialling
// through it must use no proxy while guarded: a proxy would connect to the
// destination itself, past the guard, from wherever it runs.
func Guard(d *net.Dialer, allowPrivate bool) *net.Dialer {
	if !allowPrivate {
		d.ControlContext = nil
		d.Control = Control
	}
	return d
}
