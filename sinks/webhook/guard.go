package webhook

import (
	"errors"
	"net/netip"
	"syscall"
)

// ErrBlockedAddress is wrapped by every *BlockedAddressError.
var ErrBlockedAddress = errors.New("sinkbus: webhook destination address not allowed")

// BlockedAddressError is a dial the SSRF guard refused: the destination
// resolved to an internal address and Config.AllowPrivateNetworks is off.
// The sink returns it as a permanent failure.
type BlockedAddressError struct {
	Addr netip.Addr
	// Rule names the range the address is in: "loopback", "private", ...
	Rule string
}

func (e *BlockedAddressError) Error() string {
	return "sinkbus: webhook destination " + e.Addr.String() + " is a " + e.Rule +
		" address; allow_private_networks allows it where the application allows" +
		" private networks (bus.Config.AllowPrivateNetworks)"
}

// Unwrap returns ErrBlockedAddress.
func (e *BlockedAddressError) Unwrap() error { return ErrBlockedAddress }

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

// checkAddr returns a *BlockedAddressError when addr is internal.
func checkAddr(addr netip.Addr) error {
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
			return &BlockedAddressError{Addr: addr, Rule: r.rule}
		}
	}
	return nil
}

// guardDial is a net.Dialer Control function. It runs after DNS resolution
// and before connect, on the very address about to be dialled, so a name
// cannot resolve to a public address when checked and a private one when
// used.
func guardDial(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedAddressError{Rule: "unparsable"}
	}
	return checkAddr(ap.Addr())
}
