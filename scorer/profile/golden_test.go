package profile_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwarkgw/bulwark/scorer/profile"
	"github.com/bulwarkgw/bulwark/scorer/rules"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func builtin(t *testing.T, name string) rules.Config {
	t.Helper()
	p, err := profile.Builtin(name)
	require.NoError(t, err)
	return p.Rules()
}

func TestBuiltinDefaultIsTheCodeDefault(t *testing.T) {
	p, err := profile.Builtin("default")
	require.NoError(t, err)
	assert.Equal(t, profile.Default(), p)
	_, err = profile.Builtin("nope")
	assert.ErrorContains(t, err, `no built-in profile "nope"`)
}

// TestSeed002Table is seed 002's rule table (SEEDS.md 3.1), cell by cell.
func TestSeed002Table(t *testing.T) {
	cfg := builtin(t, "seed-002")
	want := func(visits int64, sensitive bool) float64 {
		switch {
		case visits <= 2:
			return 0
		case visits == 3 && !sensitive:
			return 0
		case visits == 3:
			return 0.4
		case visits <= 6 && !sensitive:
			return 0.3
		case visits <= 6:
			return 0.7
		case !sensitive:
			return 0.8
		default:
			return 1.0
		}
	}
	for visits := int64(1); visits <= 20; visits++ {
		for _, sensitive := range []bool{false, true} {
			// Every other signal is ignored by this profile.
			f := rules.Features{
				Visits: visits, Sensitive: sensitive,
				Count1s: 100, Count10s: 500, Count60s: 900, AuthFailures: 9, SequentialIDs: 9,
				UserAgent: "curl/8", ASN: 16509, Country: "KP",
			}
			r := rules.Score(&cfg, f)
			w := want(visits, sensitive)
			require.Equal(t, w, r.Score, "visits %d sensitive %v", visits, sensitive)
			level := rules.LevelAllow
			if w >= 0.7 {
				level = rules.LevelBlock
			}
			require.Equal(t, level, r.Level, "visits %d sensitive %v", visits, sensitive)
			checkSum(t, r)
		}
	}
}

func checkSum(t *testing.T, r rules.Result) {
	t.Helper()
	sum := 0.0
	for _, rs := range r.Reasons {
		sum += rs.Contribution
	}
	assert.InDelta(t, r.Score, sum, 1e-3)
}

// TestSeed002Scenarios replays S26–S28 on the rules, the gateway's visit
// counter (fixed 3 s window, per IP across paths) simulated here.
func TestSeed002Scenarios(t *testing.T) {
	cfg := builtin(t, "seed-002")
	var visits int64
	req := func(sensitive bool) rules.Result {
		visits++
		return rules.Score(&cfg, rules.Features{Visits: visits, Sensitive: sensitive})
	}

	// S26: 7 × GET /svc/public: scores 0,0,0,0.3,0.3,0.3, then 0.8 → block.
	var got []float64
	var levels []string
	for range 7 {
		r := req(false)
		got, levels = append(got, r.Score), append(levels, r.Level)
	}
	assert.Equal(t, []float64{0, 0, 0, 0.3, 0.3, 0.3, 0.8}, got)
	assert.Equal(t, []string{"allow", "allow", "allow", "allow", "allow", "allow", "block"}, levels)

	// S28: the window resets; the next request is visit 1, score 0.
	visits = 0
	r := req(false)
	assert.Equal(t, 0.0, r.Score)
	assert.Equal(t, "allow", r.Level)

	// S27: 4 × GET /api/data: 0, 0, 0.4, then 0.7 → block.
	visits, got, levels = 0, nil, nil
	for range 4 {
		r := req(true)
		got, levels = append(got, r.Score), append(levels, r.Level)
	}
	assert.Equal(t, []float64{0, 0, 0.4, 0.7}, got)
	assert.Equal(t, []string{"allow", "allow", "allow", "block"}, levels)

	// S27: 3 × /svc/public then POST /api/login: the 4th is blocked.
	visits = 0
	for range 3 {
		assert.Equal(t, "allow", req(false).Level)
	}
	r = req(true)
	assert.Equal(t, 0.7, r.Score)
	assert.Equal(t, "block", r.Level)
}

// golden is one row of testdata/default.golden.json.
type golden struct {
	Name   string          `json:"name"`
	In     rules.Features  `json:"in"`
	Result json.RawMessage `json:"result"`
}

// TestDefaultGolden pins the default profile's full result (score, level,
// every reason) for a set of typical clients. Run with -update after a
// deliberate recalibration and review the diff.
func TestDefaultGolden(t *testing.T) {
	cfg := builtin(t, "default")
	chrome := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	cases := []struct {
		name string
		in   rules.Features
	}{
		{"idle", rules.Features{}},
		{"human browsing", rules.Features{Count1s: 7, Count10s: 9, Count60s: 31, DistinctPaths: 14, Intervals: 11, IntervalCV: 1.7, UserAgent: chrome, Country: "DE", ASN: 3320}},
		{"human login typo", rules.Features{Count1s: 2, Count10s: 6, Count60s: 25, Sensitive: true, SensitiveHits: 2, AuthFailures: 1, Errors4xx: 1, DistinctPaths: 9, Intervals: 11, IntervalCV: 1.2, UserAgent: chrome}},
		{"sneaker bot", rules.Features{Count1s: 30, Count10s: 30, Count60s: 30, Sensitive: true, SensitiveHits: 30, Intervals: 11, IntervalCV: 0.1, UserAgent: chrome}},
		{"scraper", rules.Features{Count1s: 4, Count10s: 8, Count60s: 8, DistinctPaths: 8, SequentialIDs: 8, UserAgent: chrome}},
		{"credential stuffer", rules.Features{Count1s: 5, Count10s: 20, Count60s: 20, Sensitive: true, SensitiveHits: 20, AuthFailures: 8, Errors4xx: 8, UserAgent: "python-requests/2.31"}},
		{"botnet member, first request", rules.Features{Count1s: 1, Count10s: 1, Count60s: 1, Sensitive: true, SensitiveHits: 1, UserAgent: chrome, Country: "US", ASN: 16509}},
		{"botnet member, later", rules.Features{Count1s: 1, Count10s: 3, Count60s: 15, Sensitive: true, SensitiveHits: 15, AuthFailures: 3, Errors4xx: 3, Intervals: 11, IntervalCV: 0.04, UserAgent: chrome, Country: "US", ASN: 16509}},
		{"verified googlebot", rules.Features{Count1s: 3, Count10s: 20, Count60s: 120, SequentialIDs: 30, DistinctPaths: 120, UserAgent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", Addr: netip.MustParseAddr("66.249.66.1"), Country: "US", ASN: 15169}},
		{"bingbot verified by DNS on a hosting ASN", rules.Features{Count1s: 3, Count10s: 20, Count60s: 120, DistinctPaths: 120, UserAgent: "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", Addr: netip.MustParseAddr("52.167.144.20"), Country: "US", ASN: 8075, Hostnames: []string{"msnbot-52-167-144-20.search.msn.com"}}},
		{"bingbot unverified on a hosting ASN", rules.Features{Count1s: 3, Count10s: 20, Count60s: 120, DistinctPaths: 120, UserAgent: "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", Addr: netip.MustParseAddr("52.167.144.20"), Country: "US", ASN: 8075}},
		// The API's clients and the attackers the amplified rule was made
		// for (scorer/rules/doc.go).
		{"integration from a cloud on a timer", rules.Features{Count1s: 5, Count10s: 50, Count60s: 300, DistinctPaths: 9, Intervals: 11, IntervalCV: 0.01, UserAgent: "python-requests/2.32.3", Country: "US", ASN: 16509}},
		{"API client, a run of 4 neighbouring ids by chance", rules.Features{Count1s: 2, Count10s: 10, Count60s: 40, DistinctPaths: 6, SequentialIDs: 4, UserAgent: "python-requests/2.32.3", Country: "US", ASN: 16509}},
		{"webhook burst from a cloud", rules.Features{Count1s: 50, Count10s: 50, Count60s: 100, DistinctPaths: 1, Intervals: 11, IntervalCV: 2.5, UserAgent: "Stripe/1.0 (+https://stripe.com/docs/webhooks)", Country: "US", ASN: 16509}},
		{"principal batch job at 50/s", rules.Features{Count1s: 50, Count10s: 500, Count60s: 3000, DistinctPaths: 40, Intervals: 11, IntervalCV: 0.05, UserAgent: "Go-http-client/1.1", Country: "US", ASN: 16509, Principal: "key:0123456789ab"}},
		{"leaked key enumerating orders", rules.Features{Count1s: 5, Count10s: 50, Count60s: 300, SequentialIDs: 300, AuthFailures: 298, Errors4xx: 298, Intervals: 11, IntervalCV: 0.1, UserAgent: "python-requests/2.31.0", Principal: "key:0123456789ab"}},
		{"okhttp scraping random ids", rules.Features{Count1s: 8, Count10s: 80, Count60s: 480, DistinctPaths: 470, Errors4xx: 450, Intervals: 11, IntervalCV: 0.2, UserAgent: "okhttp/4.12.0"}},
		{"scraper posing as a browser, pages without assets", rules.Features{Count1s: 2, Count10s: 12, Count60s: 72, DistinctPaths: 72, Pages60s: 72, UserAgent: chrome}},
		{"person reading pages with their assets", rules.Features{Count1s: 1, Count10s: 2, Count60s: 8, DistinctPaths: 8, Pages60s: 8, Assets60s: 200, Intervals: 11, IntervalCV: 1.4, UserAgent: chrome}},
	}
	var rows []golden
	for _, c := range cases {
		res, err := json.Marshal(rules.Score(&cfg, c.in))
		require.NoError(t, err)
		rows = append(rows, golden{Name: c.name, In: c.in, Result: res})
	}
	path := filepath.Join("testdata", "default.golden.json")
	if *update {
		data, err := json.MarshalIndent(rows, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, append(data, '\n'), 0o644))
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	var want []golden
	require.NoError(t, json.Unmarshal(data, &want))
	require.Len(t, want, len(rows))
	for i := range rows {
		assert.Equal(t, want[i].Name, rows[i].Name)
		assert.JSONEq(t, string(want[i].Result), string(rows[i].Result), fmt.Sprintf("golden %q", rows[i].Name))
	}
}
