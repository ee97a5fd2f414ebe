package traffic

import (
	"math"
	"net/netip"
	"time"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Regularity is the coefficient of variation the state's gaps are scored
// with (cv), for request times (Unix ms, newest first): the number of gaps
// and their CV. Equal times give gaps of 0; when every gap is 0 the CV is
// 0 (perfectly regular).
func Regularity(times []int64) (int, float64) {
	if len(times) < 2 {
		return 0, 0
	}
	gaps := make([]float64, len(times)-1)
	for i := range gaps {
		gaps[i] = math.Abs(float64(times[i] - times[i+1]))
	}
	return len(gaps), cv(gaps)
}

// State is ip's live state in m, as Observe would read it at now.
func (m *Memory) State(ip netip.Addr, now time.Time) (wire.ClientState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, fresh := m.get(ip, now.UnixMilli())
	return s.st, !fresh
}
