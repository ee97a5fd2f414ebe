package traffic

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
)

// TestExpiredRequestDoesNotCutTheBatch: a request that expired while it
// waited is dropped from its batch, and the fresh requests with it still
// get their answers (the batch once took the earliest deadline, so one
// stale request failed every request batched with it).
func TestExpiredRequestDoesNotCutTheBatch(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	b := &batcher{rdb: rdb} // no workers: the test sends the batch itself
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()
	fresh, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()

	var staleCmd, freshCmd *redis.StatusCmd
	stale := &op{ctx: expired, done: make(chan struct{}), queue: func(p redis.Pipeliner) { staleCmd = p.Set(expired, prefix+"stale", 1, 0) }}
	ok := &op{ctx: fresh, done: make(chan struct{}), queue: func(p redis.Pipeliner) { freshCmd = p.Set(fresh, prefix+"fresh", 1, 0) }}
	b.send([]*op{stale, ok})

	<-stale.done
	<-ok.done
	assert.Nil(t, staleCmd, "the expired request was never queued")
	require.NotNil(t, freshCmd)
	assert.NoError(t, freshCmd.Err())
	assert.Equal(t, abandoned, stale.state.Load())
	n, err := rdb.Exists(context.Background(), prefix+"stale").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "never sent")
	n, err = rdb.Exists(context.Background(), prefix+"fresh").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}
