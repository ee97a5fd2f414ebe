package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"
)

// Detection goals (the issue's): bots caught after their first second,
// people and verified crawlers left alone, a 50 rps bot blocked within 1 s;
// browsers loading big pages: at most 0.1 % of clients refused even once
// and none banned; scanners: 99 % of their probes after the 3rd refused;
// an API's clients: not one request refused; page scrapers that only
// their pace gives away: 99 % caught after their first minute.
const (
	goalBotCaught      = 0.99
	goalHumanAffected  = 0.001
	goalFastBlock      = time.Second
	goalClientsRefused = 0.001
	goalProbesRefused  = 0.99
)

// ScenarioReport is one scenario's outcome.
type ScenarioReport struct {
	Name      string `json:"name"`
	Label     Label  `json:"label"`
	Clients   int    `json:"clients"`
	Sent      int    `json:"sent"`
	Allowed   int    `json:"allowed"`
	Throttled int    `json:"throttled"`
	Blocked   int    `json:"blocked"`
	Failed    int    `json:"failed"`
	// AfterFirstSecond counts requests sent at least 1 s after their
	// client's first; CaughtAfterFirstSecond those of them throttled or
	// blocked.
	AfterFirstSecond       int `json:"after_first_second"`
	CaughtAfterFirstSecond int `json:"caught_after_first_second"`
	// AfterFirstMinute and CaughtAfterFirstMinute are the same a minute
	// or more after the client's first (Measure AfterMinute).
	AfterFirstMinute       int `json:"after_first_minute"`
	CaughtAfterFirstMinute int `json:"caught_after_first_minute"`
	// ClientsBlocked is how many clients got a block; TimeToFirstBlockMS
	// the longest any of them took from its first request to its first
	// block (-1 when none was blocked).
	ClientsBlocked     int   `json:"clients_blocked"`
	TimeToFirstBlockMS int64 `json:"time_to_first_block_ms"`
	// ClientsRefused is how many clients got at least one refusal (429 or
	// the gateway's 403).
	ClientsRefused int `json:"clients_refused"`
	// Probes counts scanners' probes, ProbesAfterGrace those after each
	// client's 3rd and RefusedAfterGrace those of them refused.
	Probes            int `json:"probes,omitempty"`
	ProbesAfterGrace  int `json:"probes_after_3rd,omitempty"`
	RefusedAfterGrace int `json:"refused_after_3rd,omitempty"`
	// Credential scenarios log in for an API key first; KeysMinted is
	// how many of their clients got one. Every client must.
	Credential bool    `json:"credential,omitempty"`
	KeysMinted int     `json:"keys_minted,omitempty"`
	Measure    Measure `json:"measure,omitempty"`
	// Share is the goal's measure: for bots the share of requests after
	// the first second that were throttled or blocked; for people and
	// crawlers the share of all requests throttled or blocked; for
	// Measure PerClient the share of clients refused at least once; for
	// AfterProbes the share of probes after each client's 3rd refused;
	// for API the share of all requests refused; for AfterMinute the
	// share of requests after each client's first minute refused.
	Share float64 `json:"share"`
	Goal  string  `json:"goal"`
	Pass  bool    `json:"pass"`
}

// Report is a whole run.
type Report struct {
	DurationS float64          `json:"duration_s"`
	Seed      uint64           `json:"seed"`
	Rate      float64          `json:"rate"`
	Scenarios []ScenarioReport `json:"scenarios"`
	Pass      bool             `json:"pass"`
}

// recorder collects outcomes from every client.
type recorder struct {
	mu        sync.Mutex
	start     time.Time
	order     []string
	scenarios map[string]*ScenarioReport
	blocked   map[*client]time.Duration // first block after the client's first request
	refused   map[*client]bool
}

func newRecorder(start time.Time) *recorder {
	return &recorder{start: start, scenarios: map[string]*ScenarioReport{},
		blocked: map[*client]time.Duration{}, refused: map[*client]bool{}}
}

func (r *recorder) declare(sc Scenario, clients int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.order = append(r.order, sc.Name)
	r.scenarios[sc.Name] = &ScenarioReport{Name: sc.Name, Label: sc.Label, Clients: clients, TimeToFirstBlockMS: -1,
		Measure: sc.Measure, Credential: sc.Credential}
}

// keyed records that a client got its API key.
func (r *recorder) keyed(c *client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scenarios[c.scenario].KeysMinted++
}

// probe records the outcome of a scanner's n-th probe (from 1), already
// recorded as a request by add.
func (r *recorder) probe(c *client, n int, o Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.scenarios[c.scenario]
	s.Probes++
	if n > probesGrace {
		s.ProbesAfterGrace++
		if o == Throttled || o == Blocked {
			s.RefusedAfterGrace++
		}
	}
}

func (r *recorder) add(c *client, sent, first time.Time, o Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.scenarios[c.scenario]
	s.Sent++
	switch o {
	case Allowed:
		s.Allowed++
	case Throttled:
		s.Throttled++
		r.refused[c] = true
	case Blocked:
		s.Blocked++
		r.refused[c] = true
		if _, ok := r.blocked[c]; !ok {
			r.blocked[c] = sent.Sub(first)
		}
	case Failed:
		s.Failed++
	}
	if sent.Sub(first) >= time.Second {
		s.AfterFirstSecond++
		if o == Throttled || o == Blocked {
			s.CaughtAfterFirstSecond++
		}
	}
	if sent.Sub(first) >= time.Minute {
		s.AfterFirstMinute++
		if o == Throttled || o == Blocked {
			s.CaughtAfterFirstMinute++
		}
	}
}

// report judges every scenario against its goal.
func (r *recorder) report(elapsed time.Duration, o options) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c, d := range r.blocked {
		s := r.scenarios[c.scenario]
		s.ClientsBlocked++
		s.TimeToFirstBlockMS = max(s.TimeToFirstBlockMS, d.Milliseconds())
	}
	for c := range r.refused {
		r.scenarios[c.scenario].ClientsRefused++
	}
	rep := &Report{DurationS: elapsed.Seconds(), Seed: o.seed, Rate: o.rate, Pass: true}
	for _, name := range r.order {
		s := r.scenarios[name]
		if s.Clients == 0 {
			continue
		}
		judge(s, o.rate)
		rep.Pass = rep.Pass && s.Pass
		rep.Scenarios = append(rep.Scenarios, *s)
	}
	return rep
}

// judge sets a scenario's share, goal and verdict.
func judge(s *ScenarioReport, rate float64) {
	switch {
	case s.Measure == PerClient:
		// A client refused even once is a person affected; a gateway 403
		// (a block, which bans the address, or the ban itself) is a
		// person banned: none may be.
		if s.Clients > 0 {
			s.Share = float64(s.ClientsRefused) / float64(s.Clients)
		}
		s.Goal = fmt.Sprintf("<= %.1f%% of clients refused, none banned", goalClientsRefused*100)
		s.Pass = s.Sent > 0 && s.Share <= goalClientsRefused && s.ClientsBlocked == 0
	case s.Measure == AfterProbes:
		if s.ProbesAfterGrace > 0 {
			s.Share = float64(s.RefusedAfterGrace) / float64(s.ProbesAfterGrace)
		}
		s.Goal = fmt.Sprintf(">= %.0f%% of probes after the %s refused", goalProbesRefused*100, ordinal(probesGrace))
		s.Pass = s.ProbesAfterGrace > 0 && s.Share >= goalProbesRefused
	case s.Measure == API:
		// An API's client: every request is someone's integration
		// working or failing.
		if s.Sent > 0 {
			s.Share = float64(s.Throttled+s.Blocked) / float64(s.Sent)
		}
		s.Goal = "0% refused"
		s.Pass = s.Sent > 0 && s.Throttled+s.Blocked == 0
	case s.Measure == AfterMinute:
		// Nothing before a minute has passed proves anything either way:
		// a run shorter than a minute misses this goal.
		if s.AfterFirstMinute > 0 {
			s.Share = float64(s.CaughtAfterFirstMinute) / float64(s.AfterFirstMinute)
		}
		s.Goal = fmt.Sprintf(">= %.0f%% caught after 1st min", goalBotCaught*100)
		s.Pass = s.AfterFirstMinute > 0 && s.Share >= goalBotCaught
	case s.Label == Bot:
		if s.AfterFirstSecond > 0 {
			s.Share = float64(s.CaughtAfterFirstSecond) / float64(s.AfterFirstSecond)
		}
		s.Goal = fmt.Sprintf(">= %.0f%% caught after 1st s", goalBotCaught*100)
		s.Pass = s.AfterFirstSecond > 0 && s.Share >= goalBotCaught
		if s.Name == "sneaker" && rate >= 1 {
			s.Goal += ", blocked within 1 s"
			s.Pass = s.Pass && s.ClientsBlocked == s.Clients &&
				s.TimeToFirstBlockMS >= 0 && s.TimeToFirstBlockMS <= goalFastBlock.Milliseconds()
		}
	default: // people and crawlers, by request
		if s.Sent > 0 {
			s.Share = float64(s.Throttled+s.Blocked) / float64(s.Sent)
		}
		s.Goal = fmt.Sprintf("<= %.1f%% affected", goalHumanAffected*100)
		s.Pass = s.Sent > 0 && s.Share <= goalHumanAffected
	}
	if s.Credential {
		s.Goal += ", every client keyed"
		s.Pass = s.Pass && s.KeysMinted >= s.Clients
	}
	s.Pass = s.Pass && s.Failed == 0
}

func (rep *Report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tclients\tsent\tallowed\tthrottled\tblocked\tfailed\trefused/banned clients\tfirst block\tshare\tgoal\t\t")
	for _, s := range rep.Scenarios {
		first := "-"
		if s.TimeToFirstBlockMS >= 0 {
			first = fmt.Sprintf("%d ms", s.TimeToFirstBlockMS)
		}
		verdict := "FAIL"
		if s.Pass {
			verdict = "ok"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d/%d\t%s\t%.2f%%\t%s\t%s\t\n",
			s.Name, s.Clients, s.Sent, s.Allowed, s.Throttled, s.Blocked, s.Failed, s.ClientsRefused, s.ClientsBlocked, first, s.Share*100, s.Goal, verdict)
	}
	_ = tw.Flush()
	for _, s := range rep.Scenarios {
		if s.Credential {
			fmt.Fprintf(w, "%s: %d of %d clients got an API key from POST /auth\n", s.Name, s.KeysMinted, s.Clients)
		}
	}
	verdict := "every goal met"
	if !rep.Pass {
		verdict = "GOALS MISSED"
	}
	fmt.Fprintf(w, "\n%.0f s, seed %d, rate x%g: %s\n", rep.DurationS, rep.Seed, rep.Rate, verdict)
}

func (rep *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// ordinal spells 1, 2, 3, 4... as 1st, 2nd, 3rd, 4th...
func ordinal(n int) string {
	switch {
	case n%100 >= 11 && n%100 <= 13:
		return fmt.Sprintf("%dth", n)
	case n%10 == 1:
		return fmt.Sprintf("%dst", n)
	case n%10 == 2:
		return fmt.Sprintf("%dnd", n)
	case n%10 == 3:
		return fmt.Sprintf("%drd", n)
	}
	return fmt.Sprintf("%dth", n)
}
