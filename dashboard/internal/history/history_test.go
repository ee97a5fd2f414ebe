package history_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/dashboard/internal/history"
	"github.com/bulwarkgw/bulwark/dashboard/internal/testenv"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

func TestEvents(t *testing.T) {
	t.Parallel()
	db := testenv.Mongo(t)
	coll := db.Collection("events")
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	docs := []any{
		wire.Event{ID: "a", TS: t0, Type: wire.EventBan, IP: "203.0.113.1", Score: 0.9, Reasons: []wire.Reason{{Feature: "burst", Value: 40, Contribution: 0.9}}, Geo: &wire.Geo{Country: "DE"}},
		wire.Event{ID: "b", TS: t0.Add(time.Second), Type: wire.EventThrottle, IP: "203.0.113.1", Score: 0.6},
		wire.Event{ID: "c", TS: t0.Add(2 * time.Second), Type: wire.EventBan, IP: "198.51.100.2", Score: 0.95},
	}
	_, err := coll.InsertMany(ctx, docs)
	require.NoError(t, err)
	s, err := history.New(coll)
	require.NoError(t, err)

	ids := func(evs []wire.Event) []string {
		out := []string{}
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	all, err := s.Events(ctx, history.Query{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, []string{"c", "b", "a"}, ids(all), "newest first")
	assert.Equal(t, t0, all[2].TS.UTC())
	assert.Equal(t, "DE", all[2].Geo.Country)
	assert.Equal(t, "burst", all[2].Reasons[0].Feature)

	bans, err := s.Events(ctx, history.Query{Type: wire.EventBan, Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, []string{"c", "a"}, ids(bans))

	one, err := s.Events(ctx, history.Query{IP: "203.0.113.1", Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, ids(one))

	none, err := s.Events(ctx, history.Query{IP: "192.0.2.1", Limit: 5})
	require.NoError(t, err)
	assert.Empty(t, none)

	_, err = s.Events(ctx, history.Query{Limit: 0})
	assert.Error(t, err)
	_, err = s.Events(ctx, history.Query{Limit: history.MaxLimit + 1})
	assert.Error(t, err)
}
