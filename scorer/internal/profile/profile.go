// Package profile loads the scorer's scoring profile: each feature's ramp and
// weight, the country risk map, and the block/throttle thresholds. Defaults
// live in code (rules.DefaultConfig plus block 0.8, throttle 0.5); a YAML
// file overrides any subset of them. Decoding is strict: an unknown key, a
// value of the wrong type or an out-of-range value is an error naming its
// key path (for example "features.burst.bogus: unknown key"), and every
// problem in a file is reported together.
//
// The format:
//
//	features:
//	  burst:    {low: 10, high: 30, weight: 1.0}   # requests in the last second
//	  rate:     {low: 3,  high: 10, weight: 0.9}   # req/s averaged over 10 s
//	  rate_60s: {low: 2,  high: 6,  weight: 0.6}   # req/s averaged over 60 s
//	  geo:
//	    weight: 0.5
//	    country_risk: {KP: 1.0, RU: 0.4}          # ISO 3166-1 alpha-2 → risk in [0, 1]
//	thresholds:
//	  block: 0.8
//	  throttle: 0.5
//
// A key left out keeps its default; country_risk, when given, replaces the
// (empty) default map as a whole.
package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/bulwarkgw/bulwark/scorer/internal/rules"
	"gopkg.in/yaml.v3"
)

// Ramp is one counting feature: risk 0 at or below Low, 1 at or above High.
type Ramp struct {
	Low    float64 `yaml:"low" json:"low"`
	High   float64 `yaml:"high" json:"high"`
	Weight float64 `yaml:"weight" json:"weight"`
}

// Geo is the geo feature: the configured risk of the client's country,
// scaled by Weight. Local addresses and countries not listed carry no risk.
type Geo struct {
	Weight      float64            `yaml:"weight" json:"weight"`
	CountryRisk map[string]float64 `yaml:"country_risk" json:"country_risk"`
}

// Features holds every feature's settings.
type Features struct {
	Burst   Ramp `yaml:"burst" json:"burst"`
	Rate    Ramp `yaml:"rate" json:"rate"`
	Rate60s Ramp `yaml:"rate_60s" json:"rate_60s"`
	Geo     Geo  `yaml:"geo" json:"geo"`
}

// Thresholds are the scores at which a client is throttled or blocked. The
// gateway has its own; the scorer only publishes these.
type Thresholds struct {
	Block    float64 `yaml:"block" json:"block"`
	Throttle float64 `yaml:"throttle" json:"throttle"`
}

// Profile is a complete, validated scoring profile.
type Profile struct {
	Features   Features   `yaml:"features" json:"features"`
	Thresholds Thresholds `yaml:"thresholds" json:"thresholds"`
}

// Default returns the built-in profile.
func Default() *Profile {
	c := rules.DefaultConfig()
	ramp := func(r rules.Ramp) Ramp { return Ramp{Low: r.Low, High: r.High, Weight: r.Weight} }
	return &Profile{
		Features: Features{
			Burst:   ramp(c.Burst),
			Rate:    ramp(c.Rate),
			Rate60s: ramp(c.Rate60s),
			Geo:     Geo{Weight: c.GeoWeight, CountryRisk: clone(c.CountryRisk)},
		},
		Thresholds: Thresholds{Block: 0.8, Throttle: 0.5},
	}
}

// Rules returns the profile's settings for the rules package.
func (p *Profile) Rules() rules.Config {
	ramp := func(r Ramp) rules.Ramp { return rules.Ramp{Low: r.Low, High: r.High, Weight: r.Weight} }
	return rules.Config{
		Burst:       ramp(p.Features.Burst),
		Rate:        ramp(p.Features.Rate),
		Rate60s:     ramp(p.Features.Rate60s),
		GeoWeight:   p.Features.Geo.Weight,
		CountryRisk: clone(p.Features.Geo.CountryRisk),
	}
}

// KeyError is one problem with one key of a profile.
type KeyError struct {
	Key    string // dotted path, e.g. "features.burst.high"
	Reason string
	Line   int // line in the YAML file, when known
}

func (e *KeyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: %s (line %d)", e.Key, e.Reason, e.Line)
	}
	return e.Key + ": " + e.Reason
}

// Load reads and parses the profile at path.
func Load(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	return Parse(data)
}

// Parse decodes a YAML profile over the defaults and validates it. The
// error joins one *KeyError per problem.
func Parse(data []byte) (*Profile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse profile: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse profile: want exactly one YAML document")
	}

	p := Default()
	var d decoder
	if len(doc.Content) > 0 {
		d.decode(doc.Content[0], reflectValue(p), "")
	}
	if err := errors.Join(append(d.errs, p.validate()...)...); err != nil {
		return nil, err
	}
	return p, nil
}

// Validate checks every value and returns one *KeyError per problem,
// joined, or nil.
func (p *Profile) Validate() error { return errors.Join(p.validate()...) }

func (p *Profile) validate() []error {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Reason: fmt.Sprintf(format, args...)})
	}
	ramp := func(key string, r Ramp) {
		if !finite(r.Low) || r.Low < 0 {
			fail(key+".low", "must be a number >= 0, got %v", r.Low)
		}
		if !finite(r.High) {
			fail(key+".high", "must be a finite number, got %v", r.High)
		} else if r.High <= r.Low {
			fail(key+".high", "must be greater than low (%v), got %v", r.Low, r.High)
		}
		unit(fail, key+".weight", r.Weight)
	}
	ramp("features.burst", p.Features.Burst)
	ramp("features.rate", p.Features.Rate)
	ramp("features.rate_60s", p.Features.Rate60s)
	unit(fail, "features.geo.weight", p.Features.Geo.Weight)

	codes := make([]string, 0, len(p.Features.Geo.CountryRisk))
	for code := range p.Features.Geo.CountryRisk {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	for _, code := range codes {
		key := "features.geo.country_risk." + code
		if !isCountryCode(code) {
			fail(key, "not an ISO 3166-1 alpha-2 country code (two upper-case letters)")
		}
		unit(fail, key, p.Features.Geo.CountryRisk[code])
	}

	t := p.Thresholds
	if !finite(t.Block) || t.Block <= 0 || t.Block > 1 {
		fail("thresholds.block", "must be greater than 0 and at most 1, got %v", t.Block)
	}
	if !finite(t.Throttle) || t.Throttle <= 0 || t.Throttle > 1 {
		fail("thresholds.throttle", "must be greater than 0 and at most 1, got %v", t.Throttle)
	} else if t.Throttle > t.Block {
		fail("thresholds.throttle", "must not exceed thresholds.block (%v), got %v", t.Block, t.Throttle)
	}
	return errs
}

func unit(fail func(string, string, ...any), key string, v float64) {
	if !finite(v) || v < 0 || v > 1 {
		fail(key, "must be between 0 and 1, got %v", v)
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func isCountryCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

func clone(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
