package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// readmeQueries returns the mongosh statements of the README's first ```js
// block: one per line, comments skipped.
func readmeQueries(t *testing.T, root string) []string {
	f, err := os.Open(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	defer f.Close()
	var out []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```js":
			in = true
		case in && line == "```":
			return out
		case in && line != "" && !strings.HasPrefix(line, "//"):
			out = append(out, line)
		}
	}
	t.Fatal("no ```js block in README.md")
	return nil
}

// TestReadmeQueries runs the README's db.events examples with mongosh
// against the MongoDB wire server, so the documentation cannot rot.
func TestReadmeQueries(t *testing.T) {
	mongoURI := need(t, "BULWARK_TEST_MONGO_URI")
	mongosh := need(t, "BULWARK_TEST_MONGOSH")
	root := repoRoot(t)
	queries := readmeQueries(t, root)
	require.Len(t, queries, 6, "every README query is run and checked here")

	db := "readme" + time.Now().Format("150405.000000")
	db = strings.ReplaceAll(db, ".", "")
	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Cleanup(func() {
		_ = mc.Database(db).Drop(context.Background())
		_ = mc.Disconnect(context.Background())
	})
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	gb, de := &wire.Geo{Country: "GB", City: "London"}, &wire.Geo{Country: "DE"}
	_, err = mc.Database(db).Collection("events").InsertMany(ctx, []wire.Event{
		{ID: "1", TS: t0, Type: wire.EventThrottle, IP: "203.0.113.7", Path: "/api/checkout", Score: 0.6, Geo: gb},
		{ID: "2", TS: t0.Add(time.Second), Type: wire.EventBan, IP: "203.0.113.7", Path: "/api/checkout", Score: 0.93, Geo: gb,
			Reasons: []wire.Reason{{Feature: "burst", Value: 40, Contribution: 0.93}}},
		{ID: "3", TS: t0.Add(2 * time.Second), Type: wire.EventBan, IP: "198.51.100.9", Path: "/", Score: 0.85, Geo: de},
		// Before the README's time range.
		{ID: "4", TS: t0.Add(-time.Hour), Type: wire.EventThrottle, IP: "198.51.100.9", Path: "/", Score: 0.55, Geo: de},
		{ID: "5", TS: t0.Add(-2 * time.Hour), Type: wire.EventThrottle, IP: "198.51.100.9", Path: "/", Score: 0.52, Geo: de},
	})
	require.NoError(t, err)

	uri := strings.TrimSuffix(mongoURI, "/") + "/" + db
	run := func(q string) string {
		// Each mongosh is a Node.js start: seconds on a busy machine. A
		// deadline per query, so six of them never share one budget.
		qctx, qcancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer qcancel()
		cmd := exec.CommandContext(qctx, mongosh, "--quiet", "--norc", uri, "--eval", q)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "mongosh %q:\n%s", q, out)
		return string(out)
	}

	bans := run(queries[0])
	assert.Contains(t, bans, "203.0.113.7")
	assert.Contains(t, bans, "198.51.100.9")
	assert.Contains(t, bans, "burst")
	assert.Less(t, strings.Index(bans, "198.51.100.9"), strings.Index(bans, "203.0.113.7"), "newest first")

	one := run(queries[1])
	assert.Contains(t, one, "/api/checkout")
	assert.Contains(t, one, "throttle")
	assert.NotContains(t, one, "198.51.100.9")

	byType := run(queries[2])
	assert.Regexp(t, `_id: 'ban',\s+n: 2`, byType)
	assert.Regexp(t, `_id: 'throttle',\s+n: 3`, byType)

	fromGB := run(queries[3])
	assert.Contains(t, fromGB, "203.0.113.7")
	assert.Contains(t, fromGB, "London")
	assert.NotContains(t, fromGB, "198.51.100.9")

	top := run(queries[4])
	assert.Regexp(t, `_id: '203.0.113.7',\s+n: 2`, top)
	assert.Regexp(t, `_id: '198.51.100.9',\s+n: 1`, top, "only events inside the time range count")
	assert.Less(t, strings.Index(top, "203.0.113.7"), strings.Index(top, "198.51.100.9"), "most events first")

	byCountry := run(queries[5])
	assert.Regexp(t, `_id: 'DE',\s+n: 3`, byCountry)
	assert.Regexp(t, `_id: 'GB',\s+n: 2`, byCountry)
}
