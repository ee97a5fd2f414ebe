package main

import (
	"bytes"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// generate runs the command into a temporary directory and returns the paths
// of the City and ASN databases it wrote.
func generate(t *testing.T) (cityPath, asnPath string) {
	t.Helper()
	dir := t.TempDir()
	cityPath = filepath.Join(dir, "sub", "demo-city.mmdb")
	asnPath = filepath.Join(dir, "demo-asn.mmdb")
	var out bytes.Buffer
	require.NoError(t, run([]string{"-out", cityPath, "-asn-out", asnPath, "-epoch", "1700000000"}, &out))
	assert.Contains(t, out.String(), "wrote "+cityPath)
	assert.Contains(t, out.String(), "wrote "+asnPath)
	return cityPath, asnPath
}

func TestCityDatabase(t *testing.T) {
	cityPath, _ := generate(t)
	db, err := geoip2.Open(cityPath)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })

	md := db.Metadata()
	assert.Equal(t, "GeoLite2-City", md.DatabaseType)
	assert.EqualValues(t, 6, md.IPVersion)
	assert.EqualValues(t, 28, md.RecordSize)
	assert.EqualValues(t, 1700000000, md.BuildEpoch)

	tests := []struct {
		ip        string
		country   string
		continent string
		city      string
		lat, lon  float64 // checked when city != ""
	}{
		{ip: "81.2.69.142", country: "GB", continent: "EU", city: "London", lat: 51.5142, lon: -0.0931},
		{ip: "203.0.113.7", country: "DE", continent: "EU", city: "Berlin", lat: 52.52, lon: 13.405},
		{ip: "198.51.100.200", country: "BR", continent: "SA", city: "São Paulo", lat: -23.5505, lon: -46.6333},
		{ip: "192.0.2.1", country: "JP", continent: "AS", city: "Tokyo", lat: 35.6895, lon: 139.6917},
		{ip: "45.0.12.34", country: "US", continent: "NA", city: "Ashburn", lat: 39.0438, lon: -77.4874},
		{ip: "5.0.1.1", country: "RU", continent: "EU", city: "Moscow", lat: 55.7558, lon: 37.6173},
		{ip: "36.0.200.1", country: "CN", continent: "AS", city: "Beijing", lat: 39.9042, lon: 116.4074},
		{ip: "2001:db8::1", country: "NL", continent: "EU", city: "Amsterdam", lat: 52.3676, lon: 4.9041},
		{ip: "::ffff:81.2.69.142", country: "GB", continent: "EU", city: "London", lat: 51.5142, lon: -0.0931},
		{ip: "185.0.3.4", country: "GB", continent: "EU"}, // country only
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			rec, err := db.City(netip.MustParseAddr(tt.ip))
			require.NoError(t, err)
			require.True(t, rec.HasData())
			assert.Equal(t, tt.country, rec.Country.ISOCode)
			assert.NotEmpty(t, rec.Country.Names.English)
			assert.Equal(t, tt.continent, rec.Continent.Code)
			assert.Equal(t, tt.city, rec.City.Names.English)
			if tt.city == "" {
				assert.False(t, rec.Location.HasCoordinates(), "country-only record has no location")
				return
			}
			require.True(t, rec.Location.HasCoordinates())
			assert.InDelta(t, tt.lat, *rec.Location.Latitude, 1e-9)
			assert.InDelta(t, tt.lon, *rec.Location.Longitude, 1e-9)
		})
	}

	for _, ip := range []string{"10.1.2.3", "127.0.0.1", "192.168.1.1", "8.8.8.8", "fe80::1"} {
		rec, err := db.City(netip.MustParseAddr(ip))
		require.NoError(t, err, ip)
		assert.False(t, rec.HasData(), "%s must not be found", ip)
	}

	// geoip2-golang checks the database type: ASN() is not available on a
	// City database, which is why -asn-out exists.
	_, err = db.ASN(netip.MustParseAddr("45.0.0.1"))
	var invalid geoip2.InvalidMethodError
	assert.True(t, errors.As(err, &invalid), "ASN() on a City database: %v", err)
}

func TestASNDatabase(t *testing.T) {
	_, asnPath := generate(t)
	db, err := geoip2.Open(asnPath)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	assert.Equal(t, "GeoLite2-ASN", db.Metadata().DatabaseType)

	tests := []struct {
		ip  string
		asn uint
		org string
	}{
		{"45.0.0.1", 14618, "Amazon.com, Inc."},
		{"45.1.0.1", 16509, "Amazon.com, Inc."},
		{"45.2.0.1", 14061, "DigitalOcean, LLC"},
		{"45.3.0.1", 16276, "OVH SAS"},
		{"45.4.0.1", 24940, "Hetzner Online GmbH"},
		{"81.2.69.142", 20712, "Andrews & Arnold Ltd"},
		// The clouds' and crawlers' real ranges.
		{"3.80.1.1", 14618, "Amazon.com, Inc."},
		{"18.185.0.1", 16509, "Amazon.com, Inc."},
		{"13.64.0.1", 8075, "Microsoft Corporation"},
		{"34.64.0.1", 396982, "Google LLC"},
		{"159.89.0.1", 14061, "DigitalOcean, LLC"},
		{"51.68.0.1", 16276, "OVH SAS"},
		{"88.198.0.1", 24940, "Hetzner Online GmbH"},
		{"66.249.66.1", 15169, "Google LLC"},
		{"40.77.188.1", 8075, "Microsoft Corporation"},
		{"52.167.144.20", 8075, "Microsoft Corporation"},
		{"157.55.39.1", 8075, "Microsoft Corporation"},
		{"207.46.13.1", 8075, "Microsoft Corporation"},
		// Residential ISPs.
		{"86.128.0.1", 2856, "British Telecommunications PLC"},
		{"73.0.0.1", 7922, "Comcast Cable Communications, LLC"},
	}
	for _, tt := range tests {
		rec, err := db.ASN(netip.MustParseAddr(tt.ip))
		require.NoError(t, err, tt.ip)
		assert.Equal(t, tt.asn, rec.AutonomousSystemNumber, tt.ip)
		assert.Equal(t, tt.org, rec.AutonomousSystemOrganization, tt.ip)
	}
	rec, err := db.ASN(netip.MustParseAddr("185.0.0.1"))
	require.NoError(t, err)
	assert.False(t, rec.HasData(), "country-only range has no ASN")
}

func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range demoRanges {
		assert.False(t, seen[r.Network], "duplicate range %s", r.Network)
		seen[r.Network] = true
		_, _, err := r.cityRecord()
		assert.NoError(t, err)
		if r.ASN != 0 {
			assert.NotEmpty(t, r.Org, "range %s has an ASN without organisation", r.Network)
		}
		if r.City != "" {
			assert.NotEmpty(t, r.TimeZone, "range %s", r.Network)
		}
	}
}

// TestRangesDoNotOverlap: a range inside another would silently replace
// part of it (the tree keeps the last insert).
func TestRangesDoNotOverlap(t *testing.T) {
	for i, a := range demoRanges {
		pa := netip.MustParsePrefix(a.Network)
		for _, b := range demoRanges[i+1:] {
			assert.False(t, pa.Overlaps(netip.MustParsePrefix(b.Network)), "%s overlaps %s", a.Network, b.Network)
		}
	}
}

func TestRunErrors(t *testing.T) {
	var out bytes.Buffer
	assert.ErrorContains(t, run(nil, &out), "-out is required")
	assert.ErrorContains(t, run([]string{"-out", "x.mmdb", "extra"}, &out), "unexpected arguments")
	assert.Error(t, run([]string{"-bogus"}, &out))
}
