package traffic

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher sends the Redis work of many concurrent requests in one pipeline
// (auto-pipelining): each request still makes exactly one round trip, but
// Redis and the gateway make one read and one write for a whole batch
// instead of one per request, and requests stop queueing for pool
// connections under load. A worker takes the first waiting request, adds
// every other one already waiting (up to maxBatch), and sends them; while
// its batch is in flight the next one gathers, so a batch never waits for a
// timer.
type batcher struct {
	rdb redis.UniversalClient
	ops chan *op
}

const (
	batchWorkers = 2
	maxBatch     = 128
)

// op is one caller's share of a batch.
type op struct {
	ctx   context.Context
	queue func(redis.Pipeliner)
	state atomic.Int32 // pending, taken or abandoned
	done  chan struct{}
}

const (
	pending int32 = iota
	taken
	abandoned
)

func newBatcher(rdb redis.UniversalClient) *batcher {
	b := &batcher{rdb: rdb, ops: make(chan *op, batchWorkers*maxBatch)}
	for range batchWorkers {
		go b.work()
	}
	return b
}

// do runs queue's commands in the next batch and returns once they have
// their results (each command carries its own error). A request whose
// deadline passes before a worker takes it is never sent; once taken, do
// waits for its batch, which is bounded by the latest deadline in it.
func (b *batcher) do(ctx context.Context, queue func(redis.Pipeliner)) error {
	o := &op{ctx: ctx, queue: queue, done: make(chan struct{})}
	select {
	case b.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-o.done:
	case <-ctx.Done():
		if o.state.CompareAndSwap(pending, abandoned) {
			return ctx.Err()
		}
		<-o.done
	}
	if o.state.Load() == abandoned {
		return context.DeadlineExceeded // expired in the queue; the worker dropped it
	}
	return nil
}

func (b *batcher) work() {
	batch := make([]*op, 0, maxBatch)
	for o := range b.ops {
		batch = append(batch[:0], o)
	gather:
		for len(batch) < maxBatch {
			select {
			case o := <-b.ops:
				batch = append(batch, o)
			default:
				break gather
			}
		}
		b.send(batch)
	}
}

// send runs one batch. Requests that expired while they waited are dropped
// rather than sent: one old request must not cut the batch's deadline for
// the fresh ones behind it (it did, and under overload every batch then
// timed out). The batch's deadline is the latest of its requests'.
func (b *batcher) send(batch []*op) {
	pipe := b.rdb.Pipeline()
	var deadline time.Time
	var sent []*op
	for _, o := range batch {
		if o.ctx.Err() != nil {
			if o.state.CompareAndSwap(pending, abandoned) {
				close(o.done)
			}
			continue
		}
		if !o.state.CompareAndSwap(pending, taken) {
			continue // its caller gave up before the batch left
		}
		d, ok := o.ctx.Deadline()
		if !ok {
			d = time.Now().Add(maxWait)
		}
		if d.After(deadline) {
			deadline = d
		}
		o.queue(pipe)
		sent = append(sent, o)
	}
	if len(sent) > 0 {
		if limit := time.Now().Add(maxWait); deadline.After(limit) {
			deadline = limit
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		_, _ = pipe.Exec(ctx) // every command carries its own error
		cancel()
	}
	for _, o := range sent {
		close(o.done)
	}
}

// maxWait bounds a batch whose callers set no deadline.
const maxWait = time.Second
