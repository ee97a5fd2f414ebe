package geo

import (
	"math"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// earthRadiusKm is the mean radius of the Earth.
const earthRadiusKm = 6371.0

// DistanceKm returns the great-circle (haversine) distance between two
// located places, and false when either is missing, local or has no
// coordinates (0, 0 is taken for "none").
func DistanceKm(a, b *wire.Geo) (float64, bool) {
	if !located(a) || !located(b) {
		return 0, false
	}
	rad := math.Pi / 180
	dLat := (b.Lat - a.Lat) * rad
	dLon := (b.Lon - a.Lon) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(h))), true
}

func located(g *wire.Geo) bool {
	return g != nil && !g.Local && (g.Lat != 0 || g.Lon != 0)
}
