package geo_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/bulwarkgw/bulwark/scorer/internal/geo"
	"github.com/bulwarkgw/bulwark/shared/wire"
)

func TestDistanceKm(t *testing.T) {
	london := &wire.Geo{Lat: 51.5142, Lon: -0.0931}
	tokyo := &wire.Geo{Lat: 35.6895, Lon: 139.6917}
	berlin := &wire.Geo{Lat: 52.52, Lon: 13.405}

	d, ok := geo.DistanceKm(london, tokyo)
	assert.True(t, ok)
	assert.InDelta(t, 9560, d, 20)
	d, ok = geo.DistanceKm(berlin, london)
	assert.True(t, ok)
	assert.InDelta(t, 930, d, 10)
	d, _ = geo.DistanceKm(london, london)
	assert.Zero(t, d)

	for _, g := range []*wire.Geo{nil, {Local: true}, {Country: "GB"}} {
		_, ok := geo.DistanceKm(london, g)
		assert.False(t, ok, "%+v", g)
		_, ok = geo.DistanceKm(g, london)
		assert.False(t, ok, "%+v", g)
	}
}
