package s3proxy

import (
	"net"
	"sync"
	"time"
)

// throttleChunk is the most a throttled connection moves before pacing
// again, so that a large write is spread over time instead of sent at once.
const throttleChunk = 32 << 10

// maxBurst is how far a pacer may fall behind the clock: an idle
// connection saves up at most this much time worth of bytes.
const maxBurst = 5 * time.Millisecond

// throttledListener caps every accepted connection at rate bytes per second
// in each direction.
type throttledListener struct {
	net.Listener
	rate int64
}

func (l *throttledListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &throttledConn{Conn: c, in: &pacer{rate: l.rate}, out: &pacer{rate: l.rate}}, nil
}

// throttledConn paces reads (request bytes from the client) and writes
// (response bytes to it) separately.
type throttledConn struct {
	net.Conn
	in, out *pacer
}

func (c *throttledConn) Read(p []byte) (int, error) {
	if len(p) > throttleChunk {
		p = p[:throttleChunk]
	}
	n, err := c.Conn.Read(p)
	c.in.wait(n)
	return n, err
}

func (c *throttledConn) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		end := min(written+throttleChunk, len(p))
		c.out.wait(end - written)
		n, err := c.Conn.Write(p[written:end])
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// pacer spaces transfers of one direction of one connection so that they
// average rate bytes per second.
type pacer struct {
	rate int64

	mu   sync.Mutex // guards next
	next time.Time  // when the bytes paced so far are due to have moved
}

// wait accounts n bytes and sleeps until the transfer is back on schedule.
func (p *pacer) wait(n int) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now.Add(-maxBurst)) {
		p.next = now.Add(-maxBurst)
	}
	p.next = p.next.Add(time.Duration(float64(n) / float64(p.rate) * float64(time.Second)))
	d := p.next.Sub(now)
	p.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
}
