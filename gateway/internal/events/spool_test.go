package events

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

func spoolEvents(prefix string, n int) []wire.Event {
	out := make([]wire.Event, n)
	for i := range out {
		out[i] = wire.Event{ID: fmt.Sprintf("%s-%02d", prefix, i), Type: wire.EventBan}
	}
	return out
}

func replayAll(t *testing.T, s *spool) []string {
	t.Helper()
	var ids []string
	for {
		_, found, err := s.replayOldest(3, func(b []wire.Event) error {
			for _, ev := range b {
				ids = append(ids, ev.ID)
			}
			return nil
		})
		require.NoError(t, err)
		if !found {
			return ids
		}
	}
}

// Events spooled while a segment is being replayed go to the next one:
// the replay never holds up appends, and nothing is lost or reordered.
func TestSpoolAppendsWhileReplaying(t *testing.T) {
	s, err := newSpool(t.TempDir(), 1<<20)
	require.NoError(t, err)
	require.NoError(t, s.append(spoolEvents("a", 5)))
	var got []string
	_, found, err := s.replayOldest(2, func(b []wire.Event) error {
		for _, ev := range b {
			got = append(got, ev.ID)
		}
		require.NoError(t, s.append(spoolEvents("b", 1)), "append during a replay")
		return nil
	})
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, []string{"a-00", "a-01", "a-02", "a-03", "a-04"}, got)
	assert.False(t, s.empty())
	assert.Equal(t, []string{"b-00", "b-00", "b-00"}, replayAll(t, s), "one append per replayed batch, in the next segment")
	assert.True(t, s.empty())
}

// A failed batch keeps the segment: the next replay sends it again from
// its start (the batches already sent are duplicates MongoDB ignores).
func TestSpoolKeepsASegmentThatFailed(t *testing.T) {
	s, err := newSpool(t.TempDir(), 1<<20)
	require.NoError(t, err)
	require.NoError(t, s.append(spoolEvents("a", 4)))
	calls := 0
	sent, found, err := s.replayOldest(2, func([]wire.Event) error {
		calls++
		if calls == 2 {
			return errors.New("mongo away")
		}
		return nil
	})
	assert.Error(t, err)
	assert.True(t, found)
	assert.Equal(t, 2, sent)
	assert.Equal(t, []string{"a-00", "a-01", "a-02", "a-03"}, replayAll(t, s))
}

// Segments on disk are picked up at start, the single file of earlier
// versions first; a torn last line (a crash mid-write) ends its segment;
// the size bound counts every segment.
func TestSpoolResumesFromDisk(t *testing.T) {
	dir := t.TempDir()
	s, err := newSpool(dir, 1<<20)
	require.NoError(t, err)
	require.NoError(t, s.append(spoolEvents("seg", 2)))
	legacy := `{"id":"legacy-0","type":"ban"}` + "\n" + `{"id":"legacy-1","ty`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "events.jsonl"), []byte(legacy), 0o600))

	s, err = newSpool(dir, 1<<20)
	require.NoError(t, err)
	require.NoError(t, s.append(spoolEvents("new", 1)))
	assert.Equal(t, []string{"legacy-0", "seg-00", "seg-01", "new-00"}, replayAll(t, s))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)

	small, err := newSpool(t.TempDir(), 10)
	require.NoError(t, err)
	require.NoError(t, small.append(spoolEvents("a", 1)), "below the bound")
	assert.ErrorIs(t, small.append(spoolEvents("b", 1)), errSpoolFull)
	assert.Equal(t, []string{"a-00"}, replayAll(t, small))
	assert.NoError(t, small.append(spoolEvents("c", 1)), "room again once replayed")
}
