package admin

import (
	"encoding/json"
	"time"
)

// Audit event types in seed 001's log.
const (
	EventRequest     = "request"
	EventAdminAction = "admin_action"
)

// AuditEntry is one row of the audit log. It is rendered in seed 001's
// shape: every key present, and a field that does not apply to the row's
// event type (a zero value here) as null, e.g. action and details on a
// request row, method and status_code on an admin action row.
type AuditEntry struct {
	ID         int64
	Timestamp  time.Time
	EventType  string
	ClientIP   string
	Method     string
	Path       string
	StatusCode int
	DurationMS float64
	Action     string
	Details    string
	UserAgent  string
}

// MarshalJSON writes seed 001's AuditEntry, with nulls for zero fields.
func (a AuditEntry) MarshalJSON() ([]byte, error) {
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	var status *int
	if a.StatusCode != 0 {
		status = &a.StatusCode
	}
	var dur *float64
	if a.DurationMS != 0 || status != nil {
		dur = &a.DurationMS
	}
	return json.Marshal(struct {
		ID         int64     `json:"id"`
		Timestamp  time.Time `json:"timestamp"`
		EventType  string    `json:"event_type"`
		ClientIP   string    `json:"client_ip"`
		Method     *string   `json:"method"`
		Path       *string   `json:"path"`
		StatusCode *int      `json:"status_code"`
		DurationMS *float64  `json:"duration_ms"`
		Action     *string   `json:"action"`
		Details    *string   `json:"details"`
		UserAgent  *string   `json:"user_agent"`
	}{
		a.ID, a.Timestamp.UTC(), a.EventType, a.ClientIP,
		str(a.Method), str(a.Path), status, dur,
		str(a.Action), str(a.Details), str(a.UserAgent),
	})
}
