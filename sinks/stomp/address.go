package stomp

import (
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/sinkbus/sinkbus/field"
)

// Default ports of the address schemes: STOMP's registered port, and the
// port Amazon MQ gives STOMP over TLS.
const (
	DefaultPort    = "61613"
	DefaultTLSPort = "61614"

	// ActiveMQ's OpenWire ports, refused with ssl:// and tcp:// (an explicit
	// stomp:// or stomp+ssl:// scheme may use any port).
	openWirePort    = "61616"
	openWireTLSPort = "61617"
)

// Address is one broker endpoint.
type Address struct {
	// Host is a host name or an IP address (IPv6 without brackets).
	Host string
	// Port is the TCP port, never empty once parsed.
	Port string
	// TLS is set for stomp+ssl:// and ssl:// addresses.
	TLS bool
}

// HostPort returns "host:port", as net.Dial takes it.
func (a Address) HostPort() string { return net.JoinHostPort(a.Host, a.Port) }

// String returns the address as a URL: stomp://host:port or
// stomp+ssl://host:port. It holds no credentials, so it may be logged.
func (a Address) String() string {
	if a.TLS {
		return "stomp+ssl://" + a.HostPort()
	}
	return "stomp://" + a.HostPort()
}

var (
	schemePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]{0,15}$`)
	// Host names as DNS has them (letters, digits, hyphens, underscores,
	// dots); IP literals are checked by net.ParseIP.
	hostPattern = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$`)
)

// ParseAddresses parses configured broker addresses, in order:
// stomp://host:port, stomp+ssl://host:port (TLS), tcp://, ssl://, a bare
// host:port, and Amazon MQ's failover:(stomp+ssl://a:61614,stomp+ssl://b:61614),
// whose members are added in place. A missing port is DefaultPort, or
// DefaultTLSPort for TLS schemes. ssl:// and tcp:// addresses on ActiveMQ's
// OpenWire ports (61617, 61616), as Amazon MQ lists its OpenWire endpoint,
// are refused with a hint to the STOMP one.
//
// Problems are field errors named by position ("[1]: unsupported scheme
// \"http\""); they never quote an address, which may hold credentials.
func ParseAddresses(addrs []string) ([]Address, error) {
	var p field.Problems
	out := make([]Address, 0, len(addrs))
	for i, s := range addrs {
		at := "[" + strconv.Itoa(i) + "]"
		members, err := parseEntry(s)
		if err != nil {
			p = append(p, field.New(at, "%s", err.Error()))
			continue
		}
		out = append(out, members...)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

type ruleError string

func (e ruleError) Error() string { return string(e) }

func parseEntry(s string) ([]Address, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, ruleError("required")
	}
	lower := strings.ToLower(s)
	if !strings.HasPrefix(lower, "failover:") {
		a, err := parseAddress(s)
		if err != nil {
			return nil, err
		}
		return []Address{a}, nil
	}
	list := s[len("failover:"):]
	if strings.HasPrefix(list, "(") {
		end := strings.LastIndexByte(list, ')')
		if end < 0 {
			return nil, ruleError("failover list misses its closing parenthesis")
		}
		if end != len(list)-1 {
			return nil, ruleError("failover options are not supported: use reconnect_wait, reconnect_jitter and max_reconnects")
		}
		list = list[1:end]
	}
	parts := strings.Split(list, ",")
	out := make([]Address, 0, len(parts))
	for j, part := range parts {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(part)), "failover:") {
			return nil, ruleError("failover lists do not nest")
		}
		a, err := parseAddress(part)
		if err != nil {
			return nil, ruleError("failover member " + strconv.Itoa(j+1) + ": " + err.Error())
		}
		out = append(out, a)
	}
	return out, nil
}

func parseAddress(s string) (Address, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Address{}, ruleError("required")
	}
	var a Address
	rest := s
	openWire := false // a scheme OpenWire URLs use too: ssl://, tcp://
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		if !schemePattern.MatchString(scheme) {
			return Address{}, ruleError("invalid scheme")
		}
		switch strings.ToLower(scheme) {
		case "stomp":
		case "tcp":
			openWire = true
		case "stomp+ssl":
			a.TLS = true
		case "ssl":
			a.TLS, openWire = true, true
		default:
			return Address{}, ruleError(`unsupported scheme "` + scheme + `": use stomp://, stomp+ssl://, tcp:// or ssl://`)
		}
		rest = after
	}
	if strings.ContainsAny(rest, "@") {
		return Address{}, ruleError("must not hold credentials: use username and password")
	}
	if strings.ContainsAny(rest, "/?#") {
		rest = strings.TrimSuffix(rest, "/")
		if strings.ContainsAny(rest, "/?#") {
			return Address{}, ruleError("must be host:port, without a path or options")
		}
	}
	host, port := rest, ""
	if h, p, err := net.SplitHostPort(rest); err == nil {
		if p == "" {
			return Address{}, ruleError("port must be a number from 1 to 65535")
		}
		host, port = h, p
	} else if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
		host = rest[1 : len(rest)-1] // bracketed IPv6 without a port
	} else if strings.Contains(rest, ":") {
		return Address{}, ruleError("must be host:port")
	}
	if host == "" {
		return Address{}, ruleError("host required")
	}
	if net.ParseIP(host) == nil && (!hostPattern.MatchString(host) || strings.Contains(host, "..")) {
		return Address{}, ruleError("invalid host")
	}
	if port == "" {
		port = DefaultPort
		if a.TLS {
			port = DefaultTLSPort
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return Address{}, ruleError("port must be a number from 1 to 65535")
	}
	if openWire && (port == openWirePort || port == openWireTLSPort) {
		// Amazon MQ's console lists the OpenWire endpoint first
		// (ssl://…:61617); a STOMP client there would wait out the connect
		// timeout on every attempt.
		if a.TLS {
			return Address{}, ruleError("port " + port + " is ActiveMQ's OpenWire port, not STOMP: use the stomp+ssl:// endpoint (Amazon MQ: port " + DefaultTLSPort + ")")
		}
		return Address{}, ruleError("port " + port + " is ActiveMQ's OpenWire port, not STOMP: use the stomp:// endpoint (ActiveMQ: port " + DefaultPort + ")")
	}
	a.Host, a.Port = host, port
	return a, nil
}
