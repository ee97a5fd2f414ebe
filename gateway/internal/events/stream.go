package events

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// streamLoop publishes events to the Redis Stream until stop ends, then
// publishes what is queued while wctx lasts. Whatever has arrived goes in
// one pipeline (at most BatchSize XADDs): one round trip however fast
// events come.
func (s *Sink) streamLoop(stop, wctx context.Context) {
	batch := make([]wire.Event, 0, s.opt.BatchSize)
	drain := func() {
		for len(batch) < cap(batch) {
			select {
			case ev := <-s.toStream:
				batch = append(batch, ev)
			default:
				return
			}
		}
	}
	for {
		select {
		case <-stop.Done():
			for {
				drain()
				if len(batch) == 0 {
					return
				}
				s.publishStream(wctx, batch)
				batch = batch[:0]
			}
		case ev := <-s.toStream:
			batch = append(batch, ev)
			drain()
			s.publishStream(wctx, batch)
			batch = batch[:0]
		}
	}
}

func (s *Sink) publishStream(wctx context.Context, batch []wire.Event) {
	ctx, cancel := context.WithTimeout(wctx, 2*time.Second)
	defer cancel()
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, ev := range batch {
			b, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			p.XAdd(ctx, &redis.XAddArgs{
				Stream: s.stream, MaxLen: s.opt.StreamMaxLen, Approx: true,
				Values: []any{wire.StreamField, b},
			})
		}
		return nil
	})
	if err != nil {
		// The stream is a live view; history is in MongoDB.
		s.log.Warn("event stream publish failed", "err", err, "count", len(batch))
	}
}
