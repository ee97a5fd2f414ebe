// Package profile loads the scorer's scoring profile: its name, the
// combination rule, each feature's curve and weight, the country risk map,
// hosting ASNs, automation user agents, allow rules for verified crawlers,
// and the block/throttle thresholds. Defaults live in code
// (rules.DefaultConfig); a YAML file overrides any subset of them. Two
// profiles ship built in (Builtin): "default" and "seed-002", which
// reproduces seed 002's rule table exactly.
//
// Decoding is strict: an unknown key, a value of the wrong type or an
// out-of-range value is an error naming its key path (for example
// "features.burst.bogus: unknown key"), and every problem in a file is
// reported together.
//
// The format (see profiles/default.yaml for every key):
//
//	name: default
//	combine: amplified                     # or noisy_or, capped_sum
//	amplify: 2.5                           # 0 to 10: how much circumstance strengthens behaviour
//	features:
//	  burst:    {low: 40, high: 120, weight: 1.0}  # a ramp
//	  visits:   {weight: 1, steps: [{above: 3, risk: 0.3}, {above: 6, risk: 0.8}]}
//	  regularity: {low: 0.6, high: 0.85, weight: 0.8, min_intervals: 8}
//	  error_ratio: {low: 0.25, high: 0.75, weight: 0.6, min_requests: 4, prior_requests: 8, prior_ratio: 0.05}
//	  user_agent: {weight: 0.45, automation: [curl/, ...], bots: [bot, ...], bot_risk: 0.5}
//	  geo:      {weight: 0.5, country_risk: {KP: 1.0, RU: 0.4}}
//	  hosting:  {weight: 0.45, asns: [14618, 16509]}
//	  travel:   {low: 1000, high: 5000, weight: 0.9, min_km: 500, min_seconds: 60}   # km/h
//	  bare_pages: {low: 10, high: 30, weight: 0.75}  # pages per asset, browsers only
//	allow:
//	  - {name: googlebot, user_agent: Googlebot, networks: [66.249.64.0/19], domains: [googlebot.com, google.com]}
//	thresholds: {block: 0.8, throttle: 0.5}
//
// An allow rule needs a user agent substring and networks, domains or
// both: domains (the crawler's published DNS domains, at least two labels
// each) verify by forward-confirmed reverse DNS, which the scorer resolves
// off the request path, and only for clients whose user agent the rule
// claims, so a rule with domains needs a user_agent.
//
// combine names the combination rule (scorer/rules/doc.go): amplified, the
// default, scores behaviour and lets the circumstantial features
// (user_agent, geo, hosting, regularity) only strengthen it, by amplify;
// noisy_or and capped_sum treat every feature alike and ignore amplify.
//
// A key left out keeps its default; a list or map, when given, replaces the
// default as a whole.
package profile

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/bulwarkgw/bulwark/scorer/rules"
	"gopkg.in/yaml.v3"
)

// Step is one rung of a step curve.
type Step struct {
	Above float64 `yaml:"above" json:"above"`
	Risk  float64 `yaml:"risk" json:"risk"`
}

// Curve maps a feature's value to a risk: a ramp from Low to High, or, when
// Steps is set, a step function. Weight scales the risk.
type Curve struct {
	Low    float64 `yaml:"low" json:"low"`
	High   float64 `yaml:"high" json:"high"`
	Weight float64 `yaml:"weight" json:"weight"`
	Steps  []Step  `yaml:"steps" json:"steps,omitempty"`
}

// Regularity is the regularity curve and how many gaps it needs.
type Regularity struct {
	Curve        `yaml:",inline"`
	MinIntervals int `yaml:"min_intervals" json:"min_intervals"`
}

// ErrorRatio is the error-ratio curve, how many requests it needs, and
// its smoothing: PriorRequests pseudo-requests at PriorRatio are added to
// the client's own (0 for the raw ratio).
type ErrorRatio struct {
	Curve         `yaml:",inline"`
	MinRequests   int     `yaml:"min_requests" json:"min_requests"`
	PriorRequests float64 `yaml:"prior_requests" json:"prior_requests"`
	PriorRatio    float64 `yaml:"prior_ratio" json:"prior_ratio"`
}

// UserAgent is the automation user-agent feature.
type UserAgent struct {
	Curve      `yaml:",inline"`
	Automation []string `yaml:"automation" json:"automation"`
	Bots       []string `yaml:"bots" json:"bots"`
	BotRisk    float64  `yaml:"bot_risk" json:"bot_risk"`
}

// Geo is the country-risk feature.
type Geo struct {
	Curve       `yaml:",inline"`
	CountryRisk map[string]float64 `yaml:"country_risk" json:"country_risk"`
}

// Travel is the impossible-travel feature: the curve is over km/h.
type Travel struct {
	Curve      `yaml:",inline"`
	MinKm      float64 `yaml:"min_km" json:"min_km"`
	MinSeconds float64 `yaml:"min_seconds" json:"min_seconds"`
}

// Hosting is the hosting/datacenter ASN feature.
type Hosting struct {
	Curve `yaml:",inline"`
	ASNs  []uint32 `yaml:"asns" json:"asns"`
}

// Features holds every feature's settings.
type Features struct {
	Burst           Curve      `yaml:"burst" json:"burst"`
	Rate            Curve      `yaml:"rate" json:"rate"`
	Rate60s         Curve      `yaml:"rate_60s" json:"rate_60s"`
	Visits          Curve      `yaml:"visits" json:"visits"`
	SensitiveVisits Curve      `yaml:"sensitive_visits" json:"sensitive_visits"`
	SensitiveHits   Curve      `yaml:"sensitive_hits" json:"sensitive_hits"`
	Regularity      Regularity `yaml:"regularity" json:"regularity"`
	AuthFailures    Curve      `yaml:"auth_failures" json:"auth_failures"`
	ErrorRatio      ErrorRatio `yaml:"error_ratio" json:"error_ratio"`
	PathDiversity   Curve      `yaml:"path_diversity" json:"path_diversity"`
	Enumeration     Curve      `yaml:"enumeration" json:"enumeration"`
	UserAgent       UserAgent  `yaml:"user_agent" json:"user_agent"`
	Geo             Geo        `yaml:"geo" json:"geo"`
	Hosting         Hosting    `yaml:"hosting" json:"hosting"`
	Travel          Travel     `yaml:"travel" json:"travel"`
	Probing         Curve      `yaml:"probing" json:"probing"`
	AssetRate       Curve      `yaml:"asset_rate" json:"asset_rate"`
	BarePages       Curve      `yaml:"bare_pages" json:"bare_pages"`
}

// curves returns a pointer to every feature's curve, indexed by
// rules.Feature.
func (f *Features) curves() [rules.NumFeatures]*Curve {
	return [rules.NumFeatures]*Curve{
		rules.Burst: &f.Burst, rules.Rate: &f.Rate, rules.Rate60s: &f.Rate60s,
		rules.Visits: &f.Visits, rules.SensitiveVisits: &f.SensitiveVisits,
		rules.SensitiveHits: &f.SensitiveHits, rules.Regularity: &f.Regularity.Curve,
		rules.AuthFailures: &f.AuthFailures, rules.ErrorRatio: &f.ErrorRatio.Curve,
		rules.PathDiversity: &f.PathDiversity, rules.Enumeration: &f.Enumeration,
		rules.UserAgent: &f.UserAgent.Curve, rules.Geo: &f.Geo.Curve, rules.Hosting: &f.Hosting.Curve,
		rules.Travel: &f.Travel.Curve, rules.Probing: &f.Probing, rules.AssetRate: &f.AssetRate,
		rules.BarePages: &f.BarePages,
	}
}

// Allow is an allow rule for a verified client, typically a search
// engine's crawler: its user agent contains UserAgent (case-insensitive)
// and either its address is in one of Networks or its forward-confirmed
// reverse DNS name is in one of Domains (the crawler's published domains,
// e.g. googlebot.com; see rules.AllowRule). With domains the networks are
// only the fallback for while the address's DNS is not known yet.
type Allow struct {
	Name      string   `yaml:"name" json:"name"`
	UserAgent string   `yaml:"user_agent" json:"user_agent"`
	Networks  []string `yaml:"networks" json:"networks"`
	Domains   []string `yaml:"domains" json:"domains,omitempty"`
}

// Thresholds are the scores at which a client is throttled or blocked;
// Throttle equal to Block means no throttle band.
type Thresholds struct {
	Block    float64 `yaml:"block" json:"block"`
	Throttle float64 `yaml:"throttle" json:"throttle"`
}

// Profile is a complete, validated scoring profile.
type Profile struct {
	Name    string `yaml:"name" json:"name"`
	Combine string `yaml:"combine" json:"combine"`
	// Amplify is how strongly circumstance strengthens behaviour under
	// combine: amplified (rules.Config.Amplify).
	Amplify    float64    `yaml:"amplify" json:"amplify"`
	Features   Features   `yaml:"features" json:"features"`
	Allow      []Allow    `yaml:"allow" json:"allow"`
	Thresholds Thresholds `yaml:"thresholds" json:"thresholds"`
}

// Default returns the built-in default profile (rules.DefaultConfig).
func Default() *Profile {
	c := rules.DefaultConfig()
	p := &Profile{Name: c.Name, Combine: string(c.Combine), Amplify: c.Amplify, Allow: []Allow{}}
	for _, a := range c.Allow {
		al := Allow{Name: a.Name, UserAgent: a.UserAgent, Networks: []string{}, Domains: slices.Clone(a.Domains)}
		for _, n := range a.Networks {
			al.Networks = append(al.Networks, n.String())
		}
		p.Allow = append(p.Allow, al)
	}
	for i, cp := range p.Features.curves() {
		cc := c.Curves[i]
		*cp = Curve{Low: cc.Low, High: cc.High, Weight: cc.Weight}
		for _, s := range cc.Steps {
			cp.Steps = append(cp.Steps, Step{Above: s.Above, Risk: s.Risk})
		}
	}
	p.Features.Regularity.MinIntervals = c.MinIntervals
	p.Features.ErrorRatio.MinRequests = int(c.MinRequests)
	p.Features.ErrorRatio.PriorRequests, p.Features.ErrorRatio.PriorRatio = c.ErrorPrior, c.ErrorPriorRatio
	p.Features.Travel.MinKm, p.Features.Travel.MinSeconds = c.MinTravelKm, c.MinTravelSeconds
	p.Features.UserAgent.Automation = slices.Clone(c.AutomationUA)
	p.Features.UserAgent.Bots = slices.Clone(c.BotUA)
	p.Features.UserAgent.BotRisk = c.BotUARisk
	p.Features.Geo.CountryRisk = maps.Clone(c.CountryRisk)
	p.Features.Hosting.ASNs = slices.Sorted(maps.Keys(c.HostingASNs))
	p.Thresholds = Thresholds{Block: c.Block, Throttle: c.Throttle}
	return p
}

//go:embed profiles/*.yaml
var builtins embed.FS

// BuiltinNames lists the profiles shipped with the scorer.
func BuiltinNames() []string { return []string{"default", "seed-002"} }

// Builtin returns the shipped profile with the given name.
func Builtin(name string) (*Profile, error) {
	if !slices.Contains(BuiltinNames(), name) {
		return nil, fmt.Errorf("no built-in profile %q (have %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	data, err := builtins.ReadFile("profiles/" + name + ".yaml")
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Rules compiles the profile for the rules package. The profile must be
// valid.
func (p *Profile) Rules() rules.Config {
	var c rules.Config
	c.Name = p.Name
	c.Combine = rules.Combine(p.Combine)
	c.Amplify = p.Amplify
	for i, cp := range p.Features.curves() {
		cc := rules.Curve{Low: cp.Low, High: cp.High, Weight: cp.Weight}
		for _, s := range cp.Steps {
			cc.Steps = append(cc.Steps, rules.Step{Above: s.Above, Risk: s.Risk})
		}
		c.Curves[i] = cc
	}
	c.MinIntervals = p.Features.Regularity.MinIntervals
	c.MinRequests = int64(p.Features.ErrorRatio.MinRequests)
	c.ErrorPrior, c.ErrorPriorRatio = p.Features.ErrorRatio.PriorRequests, p.Features.ErrorRatio.PriorRatio
	c.MinTravelKm, c.MinTravelSeconds = p.Features.Travel.MinKm, p.Features.Travel.MinSeconds
	c.CountryRisk = maps.Clone(p.Features.Geo.CountryRisk)
	c.HostingASNs = make(map[uint32]bool, len(p.Features.Hosting.ASNs))
	for _, a := range p.Features.Hosting.ASNs {
		c.HostingASNs[a] = true
	}
	c.AutomationUA = lowerAll(p.Features.UserAgent.Automation)
	c.BotUA = lowerAll(p.Features.UserAgent.Bots)
	c.BotUARisk = p.Features.UserAgent.BotRisk
	for _, a := range p.Allow {
		r := rules.AllowRule{Name: a.Name, UserAgent: strings.ToLower(a.UserAgent)}
		for _, d := range a.Domains {
			r.Domains = append(r.Domains, normalDomain(d))
		}
		for _, n := range a.Networks {
			if pfx, err := parsePrefix(n); err == nil {
				r.Networks = append(r.Networks, pfx)
			}
		}
		c.Allow = append(c.Allow, r)
	}
	c.Block, c.Throttle = p.Thresholds.Block, p.Thresholds.Throttle
	return c
}

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// parsePrefix accepts a CIDR or a bare address.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

// normalDomain is d as rules.AllowRule wants it: lower case, without a
// trailing dot.
func normalDomain(d string) string { return strings.TrimSuffix(strings.ToLower(d), ".") }

// domainSyntax explains what is wrong with domain d, or returns "". A
// domain has at least two labels (a bare top-level domain would verify
// half the internet), each of 1 to 63 letters, digits or hyphens, not
// starting or ending with a hyphen, 253 characters at most.
func domainSyntax(d string) string {
	n := normalDomain(d)
	if n == "" {
		return "must not be empty"
	}
	if len(n) > 253 {
		return fmt.Sprintf("%q is longer than 253 characters", d)
	}
	labels := strings.Split(n, ".")
	if len(labels) < 2 {
		return fmt.Sprintf("%q: want a domain of at least two labels, e.g. googlebot.com", d)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Sprintf("%q is not a domain name: label %q", d, l)
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Sprintf("%q is not a domain name: %q in label %q", d, c, l)
			}
		}
	}
	return ""
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
	if strings.TrimSpace(p.Name) == "" {
		fail("name", "must not be empty")
	}
	if c := rules.Combine(p.Combine); c != rules.NoisyOR && c != rules.CappedSum && c != rules.Amplified {
		fail("combine", "must be %q, %q or %q, got %q", rules.Amplified, rules.NoisyOR, rules.CappedSum, p.Combine)
	}
	if a := p.Amplify; !finite(a) || a < 0 || a > 10 {
		fail("amplify", "must be between 0 and 10, got %v", a)
	}
	for i, c := range p.Features.curves() {
		curve(fail, "features."+rules.FeatureNames[i], c)
	}
	if p.Features.Regularity.MinIntervals < 2 {
		fail("features.regularity.min_intervals", "must be at least 2, got %d", p.Features.Regularity.MinIntervals)
	}
	if p.Features.ErrorRatio.MinRequests < 1 {
		fail("features.error_ratio.min_requests", "must be at least 1, got %d", p.Features.ErrorRatio.MinRequests)
	}
	if pr := p.Features.ErrorRatio.PriorRequests; !finite(pr) || pr < 0 || pr > 1000 {
		fail("features.error_ratio.prior_requests", "must be between 0 and 1000, got %v", pr)
	}
	unit(fail, "features.error_ratio.prior_ratio", p.Features.ErrorRatio.PriorRatio)
	unit(fail, "features.user_agent.bot_risk", p.Features.UserAgent.BotRisk)
	if tr := p.Features.Travel; !finite(tr.MinKm) || tr.MinKm < 0 {
		fail("features.travel.min_km", "must be a number >= 0, got %v", tr.MinKm)
	}
	if tr := p.Features.Travel; !finite(tr.MinSeconds) || tr.MinSeconds < 1 {
		fail("features.travel.min_seconds", "must be at least 1, got %v", tr.MinSeconds)
	}
	for i, s := range p.Features.UserAgent.Automation {
		if strings.TrimSpace(s) == "" {
			fail(fmt.Sprintf("features.user_agent.automation[%d]", i), "must not be empty")
		}
	}
	for i, s := range p.Features.UserAgent.Bots {
		if strings.TrimSpace(s) == "" {
			fail(fmt.Sprintf("features.user_agent.bots[%d]", i), "must not be empty")
		}
	}
	for i, a := range p.Features.Hosting.ASNs {
		if a == 0 {
			fail(fmt.Sprintf("features.hosting.asns[%d]", i), "must be a positive AS number")
		}
	}

	for _, code := range slices.Sorted(maps.Keys(p.Features.Geo.CountryRisk)) {
		key := "features.geo.country_risk." + code
		if !isCountryCode(code) {
			fail(key, "not an ISO 3166-1 alpha-2 country code (two upper-case letters)")
		}
		unit(fail, key, p.Features.Geo.CountryRisk[code])
	}

	names := map[string]bool{}
	for i, a := range p.Allow {
		key := fmt.Sprintf("allow[%d]", i)
		switch {
		case strings.TrimSpace(a.Name) == "":
			fail(key+".name", "must not be empty")
		case names[a.Name]:
			fail(key+".name", "duplicate allow rule %q", a.Name)
		}
		names[a.Name] = true
		if len(a.Networks) == 0 && len(a.Domains) == 0 {
			fail(key+".networks", "at least one network or domain is required: a user agent alone is never verified")
		}
		if len(a.Domains) > 0 && strings.TrimSpace(a.UserAgent) == "" {
			fail(key+".user_agent", "must not be empty with domains: only clients claiming the crawler's user agent are looked up in DNS")
		}
		for j, d := range a.Domains {
			if why := domainSyntax(d); why != "" {
				fail(fmt.Sprintf("%s.domains[%d]", key, j), "%s", why)
			}
		}
		for j, n := range a.Networks {
			if _, err := parsePrefix(n); err != nil {
				fail(fmt.Sprintf("%s.networks[%d]", key, j), "invalid CIDR or address %q", n)
			}
		}
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

// curve checks a ramp (low < high) or, when steps are given, that they
// rise strictly in above and never fall in risk, so that the risk never
// decreases as the value grows.
func curve(fail func(string, string, ...any), key string, c *Curve) {
	unit(fail, key+".weight", c.Weight)
	if len(c.Steps) > 0 {
		for i, s := range c.Steps {
			sk := fmt.Sprintf("%s.steps[%d]", key, i)
			if !finite(s.Above) {
				fail(sk+".above", "must be a finite number, got %v", s.Above)
			}
			unit(fail, sk+".risk", s.Risk)
			if i > 0 {
				prev := c.Steps[i-1]
				if s.Above <= prev.Above {
					fail(sk+".above", "must be greater than the previous step's (%v), got %v", prev.Above, s.Above)
				}
				if s.Risk < prev.Risk {
					fail(sk+".risk", "must not be below the previous step's (%v), got %v", prev.Risk, s.Risk)
				}
			}
		}
		return
	}
	if !finite(c.Low) || c.Low < 0 {
		fail(key+".low", "must be a number >= 0, got %v", c.Low)
	}
	if !finite(c.High) {
		fail(key+".high", "must be a finite number, got %v", c.High)
	} else if c.High <= c.Low {
		fail(key+".high", "must be greater than low (%v), got %v", c.Low, c.High)
	}
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
