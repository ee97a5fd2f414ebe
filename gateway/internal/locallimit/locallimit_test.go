package locallimit_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/locallimit"
)

func TestSlidingLog(t *testing.T) {
	l, err := locallimit.New(10)
	require.NoError(t, err)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 5 {
		r := l.Allow("a", 5, time.Minute, t0.Add(time.Duration(i)*time.Second))
		require.True(t, r.Allowed, "request %d", i+1)
		assert.Equal(t, int64(4-i), r.Remaining)
	}
	r := l.Allow("a", 5, time.Minute, t0.Add(10*time.Second))
	assert.False(t, r.Allowed)
	assert.Equal(t, 50*time.Second, r.RetryAfter)
	assert.True(t, l.Allow("b", 5, time.Minute, t0.Add(10*time.Second)).Allowed, "per key")
	// Refused requests were not recorded: one minute after the first, one slot frees.
	assert.True(t, l.Allow("a", 5, time.Minute, t0.Add(60*time.Second)).Allowed)
	assert.False(t, l.Allow("a", 5, time.Minute, t0.Add(60*time.Second)).Allowed)
}

func TestBoundedMemory(t *testing.T) {
	l, err := locallimit.New(100)
	require.NoError(t, err)
	now := time.Unix(1_800_000_000, 0)
	for i := range 10_000 {
		l.Allow(fmt.Sprintf("k%d", i), 3, time.Minute, now)
	}
	assert.Equal(t, 100, l.Len())
	_, err = locallimit.New(0)
	assert.Error(t, err)
}

func TestConcurrent(t *testing.T) {
	l, err := locallimit.New(10)
	require.NoError(t, err)
	now := time.Now()
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if l.Allow("k", 10, time.Minute, now).Allowed {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 10, allowed)
}
