package profile_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkgw/bulwark/scorer/profile"
	"github.com/bulwarkgw/bulwark/scorer/rules"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefault(t *testing.T) {
	p := profile.Default()
	require.NoError(t, p.Validate())
	assert.Equal(t, rules.DefaultConfig(), p.Rules())
	assert.Equal(t, profile.Thresholds{Block: 0.8, Throttle: 0.5}, p.Thresholds)
}

func TestParseExample(t *testing.T) {
	p, err := profile.Load(filepath.Join("testdata", "example.yaml"))
	require.NoError(t, err)
	want := profile.Default()
	want.Features.Geo.CountryRisk = map[string]float64{"KP": 1, "RU": 0.4}
	assert.Equal(t, want, p)
}

func TestParsePartial(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		edit func(p *profile.Profile)
	}{
		{name: "empty file", yaml: "", edit: func(*profile.Profile) {}},
		{name: "comment only", yaml: "# nothing\n", edit: func(*profile.Profile) {}},
		{
			name: "one weight",
			yaml: "features:\n  burst:\n    weight: 0.7\n",
			edit: func(p *profile.Profile) { p.Features.Burst.Weight = 0.7 },
		},
		{
			name: "integers and thresholds",
			yaml: "features: {rate: {low: 4, high: 12}}\nthresholds: {block: 0.9}\n",
			edit: func(p *profile.Profile) {
				p.Features.Rate.Low, p.Features.Rate.High = 4, 12
				p.Thresholds.Block = 0.9
			},
		},
		{
			name: "another rule, no amplification",
			yaml: "combine: noisy_or\namplify: 0\n",
			edit: func(p *profile.Profile) { p.Combine, p.Amplify = "noisy_or", 0 },
		},
		{
			name: "bare pages",
			yaml: "amplify: 1.5\nfeatures:\n  bare_pages: {low: 5, high: 20}\n",
			edit: func(p *profile.Profile) {
				p.Amplify = 1.5
				p.Features.BarePages.Low, p.Features.BarePages.High = 5, 20
			},
		},
		{
			name: "null section keeps defaults",
			yaml: "features:\n  burst:\n",
			edit: func(*profile.Profile) {},
		},
		{
			name: "anchors",
			yaml: "r: &r {low: 1, high: 2, weight: 0.1}\n",
			edit: nil, // unknown key r
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := profile.Parse([]byte(tt.yaml))
			if tt.edit == nil {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			want := profile.Default()
			tt.edit(want)
			assert.Equal(t, want, p)
		})
	}
}

// keyErrors returns the "key: reason" of every *KeyError joined in err.
func keyErrors(t *testing.T, err error) map[string]string {
	t.Helper()
	require.Error(t, err)
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "want joined errors, got %T: %v", err, err)
	out := map[string]string{}
	for _, e := range joined.Unwrap() {
		var ke *profile.KeyError
		require.True(t, errors.As(e, &ke), "want *KeyError, got %T: %v", e, e)
		out[ke.Key] = ke.Reason
	}
	return out
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want map[string]string // key → substring of the reason
	}{
		{
			name: "unknown key",
			yaml: "features:\n  burst:\n    bogus: 1\n",
			want: map[string]string{"features.burst.bogus": "unknown key"},
		},
		{
			name: "unknown top-level key",
			yaml: "feature:\n  burst: {low: 1}\n",
			want: map[string]string{"feature": "unknown key"},
		},
		{
			name: "high not above low",
			yaml: "features:\n  rate: {low: 5, high: 5}\n",
			want: map[string]string{"features.rate.high": "must be greater than low (5), got 5"},
		},
		{
			name: "weight above one",
			yaml: "features:\n  rate_60s: {weight: 1.5}\n",
			want: map[string]string{"features.rate_60s.weight": "must be between 0 and 1, got 1.5"},
		},
		{
			name: "negative weight",
			yaml: "features:\n  geo: {weight: -0.1}\n",
			want: map[string]string{"features.geo.weight": "must be between 0 and 1"},
		},
		{
			name: "bad country codes",
			yaml: "features:\n  geo:\n    country_risk: {kp: 1, USA: 0.5, RU: 2}\n",
			want: map[string]string{
				"features.geo.country_risk.kp":  "ISO 3166-1 alpha-2",
				"features.geo.country_risk.USA": "ISO 3166-1 alpha-2",
				"features.geo.country_risk.RU":  "must be between 0 and 1, got 2",
			},
		},
		{
			name: "wrong types",
			yaml: "features:\n  burst: {low: ten}\n  rate: [1, 2]\n  geo: {country_risk: {KP: }}\nthresholds: 0.5\n",
			want: map[string]string{
				"features.burst.low":           `want a number, got "ten"`,
				"features.rate":                "want a mapping, got a list",
				"features.geo.country_risk.KP": "want a number, got nothing",
				"thresholds":                   `want a mapping, got "0.5"`,
			},
		},
		{
			name: "not finite",
			yaml: "features:\n  burst: {high: .inf}\n  rate: {low: .nan}\n",
			want: map[string]string{
				"features.burst.high": "must be a finite number",
				"features.rate.low":   "must be a number >= 0",
			},
		},
		{
			name: "duplicate key",
			yaml: "thresholds:\n  block: 0.9\n  block: 0.7\n",
			want: map[string]string{"thresholds.block": "duplicate key"},
		},
		{
			name: "thresholds",
			yaml: "thresholds: {block: 0.4, throttle: 0.6}\n",
			want: map[string]string{"thresholds.throttle": "must not exceed thresholds.block (0.4), got 0.6"},
		},
		{
			name: "zero block",
			yaml: "thresholds: {block: 0, throttle: 0}\n",
			want: map[string]string{
				"thresholds.block":    "must be greater than 0",
				"thresholds.throttle": "must be greater than 0",
			},
		},
		{
			name: "combine",
			yaml: "combine: max\n",
			want: map[string]string{"combine": `must be "amplified", "noisy_or" or "capped_sum", got "max"`},
		},
		{
			name: "amplify out of range",
			yaml: "amplify: 11\n",
			want: map[string]string{"amplify": "must be between 0 and 10, got 11"},
		},
		{
			name: "negative amplify",
			yaml: "amplify: -0.5\n",
			want: map[string]string{"amplify": "must be between 0 and 10, got -0.5"},
		},
		{
			name: "amplify not a number",
			yaml: "amplify: lots\n",
			want: map[string]string{"amplify": `want a number, got "lots"`},
		},
		{
			name: "bare_pages",
			yaml: "features:\n  bare_pages: {low: 30, high: 10, bogus: 1}\n",
			want: map[string]string{
				"features.bare_pages.high":  "must be greater than low (30), got 10",
				"features.bare_pages.bogus": "unknown key",
			},
		},
		{
			name: "steps must rise",
			yaml: "features:\n  visits: {weight: 1, steps: [{above: 6, risk: 0.8}, {above: 3, risk: 0.3}]}\n",
			want: map[string]string{
				"features.visits.steps[1].above": "must be greater than the previous step's (6), got 3",
				"features.visits.steps[1].risk":  "must not be below the previous step's (0.8), got 0.3",
			},
		},
		{
			name: "step risk",
			yaml: "features:\n  visits: {steps: [{above: 1, risk: 1.5}]}\n",
			want: map[string]string{"features.visits.steps[0].risk": "must be between 0 and 1, got 1.5"},
		},
		{
			name: "allow rules",
			yaml: "allow:\n  - {name: g, user_agent: Googlebot}\n  - {name: g, networks: [10.0.0.0/33]}\n",
			want: map[string]string{
				"allow[0].networks":    "a user agent alone is never verified",
				"allow[1].name":        `duplicate allow rule "g"`,
				"allow[1].networks[0]": "invalid CIDR",
			},
		},
		{
			name: "allow domains",
			yaml: "allow:\n  - {name: a, domains: [googlebot.com]}\n" +
				"  - {name: b, user_agent: x, domains: [com, '', evil_bot.com, -a.com, a..com, " + strings.Repeat("a", 64) + ".com]}\n",
			want: map[string]string{
				"allow[0].user_agent": "must not be empty with domains",
				"allow[1].domains[0]": "at least two labels",
				"allow[1].domains[1]": "must not be empty",
				"allow[1].domains[2]": `'_' in label "evil_bot"`,
				"allow[1].domains[3]": `label "-a"`,
				"allow[1].domains[4]": `label ""`,
				"allow[1].domains[5]": "is not a domain name",
			},
		},
		{
			name: "lists and integers",
			yaml: "features:\n  hosting: {asns: [0]}\n  regularity: {min_intervals: 1}\n  user_agent: {automation: curl}\n",
			want: map[string]string{
				"features.hosting.asns[0]":          "must be a positive AS number",
				"features.regularity.min_intervals": "must be at least 2, got 1",
				"features.user_agent.automation":    `want a list, got "curl"`,
			},
		},
		{
			name: "every problem together",
			yaml: "features:\n  burst: {bogus: 1, weight: 2}\n  rate: {low: 9, high: 1}\n  geo: {country_risk: {xx: 0.1}}\n",
			want: map[string]string{
				"features.burst.bogus":         "unknown key",
				"features.burst.weight":        "must be between 0 and 1",
				"features.rate.high":           "must be greater than low (9), got 1",
				"features.geo.country_risk.xx": "ISO 3166-1 alpha-2",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := profile.Parse([]byte(tt.yaml))
			got := keyErrors(t, err)
			require.Len(t, got, len(tt.want), "errors: %v", err)
			for key, reason := range tt.want {
				assert.Contains(t, got[key], reason, "key %s in %v", key, err)
				assert.Contains(t, err.Error(), key+": ")
			}
		})
	}
}

func TestParseErrorLine(t *testing.T) {
	_, err := profile.Parse([]byte("features:\n  burst:\n    bogus: 1\n"))
	require.Error(t, err)
	assert.Equal(t, "features.burst.bogus: unknown key (line 3)", err.Error())
}

func TestParseSyntax(t *testing.T) {
	for name, doc := range map[string]string{
		"syntax":             "features: {burst: [\n",
		"tabs":               "features:\n\tburst: 1\n",
		"two documents":      "thresholds: {block: 0.9}\n---\nthresholds: {block: 0.7}\n",
		"root is a sequence": "- 1\n- 2\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := profile.Parse([]byte(doc))
			assert.Error(t, err)
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := profile.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestAllowDomains(t *testing.T) {
	p, err := profile.Parse([]byte("allow:\n  - {name: bingbot, user_agent: BingBot, domains: [Search.MSN.com.]}\n"))
	require.NoError(t, err)
	c := p.Rules()
	require.Len(t, c.Allow, 1)
	assert.Equal(t, rules.AllowRule{Name: "bingbot", UserAgent: "bingbot", Domains: []string{"search.msn.com"}}, c.Allow[0],
		"domains alone verify; compiled lower case without the root dot")

	def := profile.Default()
	assert.Equal(t, []string{"googlebot.com", "google.com"}, def.Allow[0].Domains)
	assert.Equal(t, []string{"search.msn.com"}, def.Allow[1].Domains)
}

func TestJSON(t *testing.T) {
	data, err := json.Marshal(profile.Default())
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Equal(t, "default", got["name"])
	assert.Equal(t, "amplified", got["combine"])
	assert.Equal(t, 3.0, got["amplify"])
	features := got["features"].(map[string]any)
	assert.Equal(t, map[string]any{"low": 40.0, "high": 120.0, "weight": 1.0}, features["burst"])
	assert.Equal(t, map[string]any{"low": 10.0, "high": 30.0, "weight": 0.75}, features["bare_pages"])
	// The gateway reads this form back and refuses it if any feature is
	// missing (gateway/internal/localscore).
	for _, name := range rules.FeatureNames {
		assert.Contains(t, features, name)
	}
	assert.Len(t, features, int(rules.NumFeatures))
	// And it reads back as the same rules.
	again, err := profile.Parse(data)
	require.NoError(t, err)
	assert.Equal(t, rules.DefaultConfig(), again.Rules())
	assert.Equal(t, map[string]any{"block": 0.8, "throttle": 0.5}, got["thresholds"])
	assert.False(t, strings.Contains(string(data), "null"))
}
