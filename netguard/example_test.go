package netguard_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/sinkbus/sinkbus/netguard"
)

// A custom sink checks its destination when the integration is created,
// then dials through the guard, which judges the address DNS gave.
func Example() {
	for _, host := range []string{"169.254.169.254", "localhost", "erp.example.com"} {
		var blocked *netguard.BlockedError
		if errors.As(netguard.CheckHost(host), &blocked) {
			fmt.Printf("%s: refused (%s)\n", host, blocked.Rule)
			continue
		}
		fmt.Printf("%s: judged when dialled\n", host)
	}

	d := netguard.Guard(&net.Dialer{}, false)
	_, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:9")
	var blocked *netguard.BlockedError
	fmt.Println(errors.As(err, &blocked), blocked.Rule)
	// Output:
	// 169.254.169.254: refused (link-local)
	// localhost: refused (loopback)
	// erp.example.com: judged when dialled
	// true loopback
}

func ExampleCheck() {
	fmt.Println(errors.Is(netguard.Check(netip.MustParseAddr("10.1.2.3")), netguard.ErrBlocked))
	fmt.Println(netguard.Check(netip.MustParseAddr("::ffff:8.8.8.8"))) // IPv4-mapped: judged as 8.8.8.8
	// Output:
	// true
	// <nil>
}
