package connlimit

// Defaults for a gateway that is not told its limits.
const (
	// FileReserve is the open files kept for everything but client
	// connections: the Redis and MongoDB pools, the scorer's and the
	// upstreams' idle connections, the admin listener, spool and log files.
	FileReserve = 512
	// DefaultMaxCap bounds the derived maximum: an idle keep-alive
	// connection costs the Go server about 14 KB (heap and goroutine stack,
	// measured), so 16,384 of them hold about 230 MB.
	DefaultMaxCap = 16384
)

// DefaultMax derives a global maximum from the open-file limit nofile:
// FileReserve descriptors (at most half) are kept for the gateway's own
// sockets and files, and half of the rest goes to client connections,
// because each client request being proxied holds an upstream connection
// too. The result is at least 1 and at most DefaultMaxCap.
func DefaultMax(nofile uint64) int {
	reserve := min(uint64(FileReserve), nofile/2)
	n := (nofile - reserve) / 2
	return int(max(1, min(n, DefaultMaxCap)))
}
