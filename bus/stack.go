package bus

// growStack makes the goroutine's stack big enough for a delivery at once.
//
// Watermill's router runs each message in a new goroutine, which starts with
// a small stack; a delivery (filter, middleware, sink, net/http, signing)
// outgrows it twice, and each growth copies every frame on the way. Growing
// it here, while only a few frames are on it, costs one cheap copy. The same
// trick as CockroachDB's growstack package.
//
//go:noinline
func growStack() {
	var buf [deliveryStack]byte
	useStack(buf[:])
}

// deliveryStack is about what a webhook delivery needs.
const deliveryStack = 6 << 10

//go:noinline
func useStack([]byte) {}
