// Package rules turns what the gateway observed about one client into a
// score in [0, 1] and the reasons for it. It is pure: no I/O, no clock, no
// randomness; the same Config and Features always give the same Result.
//
// # Features
//
// Each feature has a raw value and a risk in [0, 1]:
//
//	feature   value                                   risk
//	burst     Count1s (requests in the last second)   Ramp
//	rate      Count10s / 10 (req/s over 10 s)         Ramp
//	rate_60s  Count60s / 60 (req/s over 60 s)         Ramp
//	geo       the configured risk of the client's     the value itself
//	          country (0 when local or unknown)
//
// A Ramp is linear: risk 0 at or below Low, 1 at or above High, and a
// straight line between. Negative counts are treated as 0.
//
// # Combination (noisy-OR)
//
//	score = 1 − Π (1 − weight_i · risk_i)
//
// clamped to [0, 1] and rounded to 4 decimals. Every weight and risk lies in
// [0, 1], so the score is bounded and never decreases when any one feature's
// value grows. Each Reason's Contribution is the feature's proportional
// share of the score,
//
//	contribution_i = weight_i · risk_i / Σ_j weight_j · risk_j × score
//
// (rounded to 4 decimals), so the contributions sum to the score up to
// rounding. Reasons list every feature, also those contributing nothing,
// sorted by contribution (largest first) then by feature name. A Reason's
// Value is the raw observed value (rounded to 4 decimals): 42 for a burst
// of 42 requests, 3.1 for a 10-second rate of 31 requests.
//
// # Defaults
//
// DefaultConfig returns:
//
//	feature   low   high   weight
//	burst     10    30     1.0
//	rate      3     10     0.9
//	rate_60s  2     6      0.6
//	geo       -     -      0.5    country risk map empty
//
// With these, a client that sends 100 requests within one second reaches a
// score of 0.8 (the default block threshold in the scorer's profile) at its
// 26th request, while a steady client with Count1s 5, Count10s 20 and
// Count60s 60 scores 0.
package rules
