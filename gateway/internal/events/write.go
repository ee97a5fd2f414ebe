package events

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// The MongoDB side of a sink is three kinds of loop:
//
//   - collect takes events off the queue into batches and hands each to a
//     free writer. When every writer is busy and the queue is half full,
//     MongoDB is not keeping up: with a spool the batch and the queue behind
//     it go to disk in one write, so the queue keeps draining; without one
//     collect waits, and Publish drops what the full queue cannot take.
//   - Options.Writers writeLoops insert batches concurrently. A failed batch
//     goes to the spool (the replay retries it) and the writer backs off;
//     without a spool it is retried with backoff until it lands.
//   - replayLoop writes the spool back, oldest segment first, in its own
//     goroutine: fresh events keep flowing meanwhile (they land before the
//     backlog, which is harmless: every query sorts by ts).

// collect batches the queue for the writers until stop ends, then batches
// what is left and closes the writers' channel.
func (s *Sink) collect(stop context.Context) {
	defer close(s.batches)
	batch := make([]wire.Event, 0, s.opt.BatchSize)
	flush := func() {
		if len(batch) > 0 {
			s.handOff(stop, batch)
			batch = make([]wire.Event, 0, s.opt.BatchSize)
		}
	}
	tick := time.NewTicker(s.opt.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop.Done():
			for {
				select {
				case ev := <-s.toMongo:
					batch = append(batch, ev)
					if len(batch) == s.opt.BatchSize {
						flush()
					}
					continue
				default:
				}
				break
			}
			flush()
			return
		case ev := <-s.toMongo:
			batch = append(batch, ev)
			if len(batch) == s.opt.BatchSize {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// handOff gives batch to a writer, or to the spool when the writers fall
// behind.
func (s *Sink) handOff(stop context.Context, batch []wire.Event) {
	select {
	case s.batches <- batch:
		return
	default:
	}
	if s.spool == nil || stop.Err() != nil {
		s.batches <- batch
		return
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if len(s.toMongo) >= cap(s.toMongo)/2 {
			// MongoDB is not keeping up: the batch and everything queued
			// behind it go to disk in one write.
			for len(batch) < cap(s.toMongo)+s.opt.BatchSize {
				select {
				case ev := <-s.toMongo:
					batch = append(batch, ev)
					continue
				default:
				}
				break
			}
			if !s.park(batch) { // the spool is full or failing: wait
				s.batches <- batch
			}
			return
		}
		select {
		case s.batches <- batch:
			return
		case <-t.C:
		case <-stop.Done():
			s.batches <- batch
			return
		}
	}
}

// park appends batch to the spool and reports whether it is there.
func (s *Sink) park(batch []wire.Event) bool {
	if s.spool == nil {
		return false
	}
	if err := s.spool.append(batch); err != nil {
		s.log.Error("event spool write failed", "err", err, "count", len(batch))
		return false
	}
	s.spooled.Add(int64(len(batch)))
	select {
	case s.spooledC <- struct{}{}:
	default:
	}
	return true
}

// writeLoop inserts batches until the channel closes. Inserts use wctx,
// which outlives stop by a few seconds so that queued events can land at
// shutdown; waits end with stop.
func (s *Sink) writeLoop(stop, wctx context.Context) {
	var backoff time.Duration
	for batch := range s.batches {
		for {
			err := s.insert(wctx, batch)
			if err == nil {
				s.written.Add(int64(len(batch)))
				backoff = 0
				break
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			s.log.Warn("event write failed", "err", err, "count", len(batch), "retry_in", backoff)
			if s.park(batch) {
				sleep(stop, backoff) // the replay retries it
				break
			}
			if wctx.Err() != nil {
				s.dropped.Add(int64(len(batch)))
				s.log.Error("events not written at shutdown", "count", len(batch))
				break
			}
			sleep(wctx, backoff)
		}
	}
}

// replayLoop writes the spool back to MongoDB, oldest first, until stop
// ends; what it has not written stays on disk for the next start.
func (s *Sink) replayLoop(stop, wctx context.Context) {
	var backoff time.Duration
	for stop.Err() == nil {
		n, found, err := s.spool.replayOldest(s.opt.BatchSize, func(b []wire.Event) error {
			if stop.Err() != nil {
				return stop.Err()
			}
			if err := s.insert(wctx, b); err != nil {
				return err
			}
			s.written.Add(int64(len(b)))
			return nil
		})
		switch {
		case err != nil && stop.Err() == nil:
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			s.log.Warn("event spool replay failed", "err", err, "replayed", n, "retry_in", backoff)
			sleep(stop, backoff)
		case err == nil && !found:
			backoff = 0
			select {
			case <-stop.Done():
			case <-s.spooledC:
			case <-time.After(time.Second):
			}
		default:
			backoff = 0
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// insert writes one batch. Documents already present (same _id, from a batch
// that landed but whose reply was lost) are not an error.
func (s *Sink) insert(ctx context.Context, batch []wire.Event) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.coll.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
	if err == nil || onlyDuplicates(err) {
		return nil
	}
	return err
}

func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}
