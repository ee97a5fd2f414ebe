package geo_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwarkgw/bulwark/scorer/internal/geo"
	"github.com/bulwarkgw/bulwark/shared/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testDB returns the path in the environment variable name: a database made
// by deploy/cmd/geoipgen. Unset, the test is skipped, or fails when CI is set.
func testDB(t *testing.T, name string) string {
	t.Helper()
	path := os.Getenv(name)
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set (generate it with: go run ./deploy/cmd/geoipgen -out /tmp/demo.mmdb -asn-out /tmp/demo-asn.mmdb)", name)
		}
		t.Skipf("%s is not set; generate a database with deploy/cmd/geoipgen", name)
	}
	return path
}

func TestIsLocal(t *testing.T) {
	tests := []struct {
		ip    string
		local bool
	}{
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"192.168.1.1", true},
		{"127.0.0.1", true},
		{"169.254.1.1", true},
		{"0.0.0.0", true},
		{"::", true},
		{"::1", true},
		{"fe80::1", true},
		{"fd00::1", true},
		{"::ffff:10.0.0.1", true},
		{"81.2.69.142", false},
		{"8.8.8.8", false},
		{"2001:db8::1", false},
		{"::ffff:81.2.69.142", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.local, geo.IsLocal(netip.MustParseAddr(tt.ip)), tt.ip)
	}
}

func TestNilLocator(t *testing.T) {
	var l *geo.Locator
	g, err := l.Lookup(netip.MustParseAddr("192.168.0.1"))
	require.NoError(t, err)
	assert.Equal(t, &wire.Geo{Local: true}, g)

	g, err = l.Lookup(netip.MustParseAddr("81.2.69.142"))
	require.NoError(t, err)
	assert.Nil(t, g)

	_, err = l.Lookup(netip.Addr{})
	assert.Error(t, err)
	assert.NoError(t, l.Close())
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := geo.OpenCity(filepath.Join(dir, "missing.mmdb"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	garbage := filepath.Join(dir, "garbage.mmdb")
	require.NoError(t, os.WriteFile(garbage, []byte("not a maxmind database"), 0o600))
	_, err = geo.OpenCity(garbage)
	assert.ErrorContains(t, err, garbage)
	_, err = geo.OpenASN(garbage)
	assert.ErrorContains(t, err, garbage)
}

func TestLookupCity(t *testing.T) {
	path := testDB(t, "BULWARK_TEST_GEOIP_DB")
	city, err := geo.OpenCity(path)
	require.NoError(t, err)
	assert.Equal(t, "GeoLite2-City", city.Type())
	l := geo.NewLocator(city, nil)
	t.Cleanup(func() { assert.NoError(t, l.Close()) })

	// A City database cannot answer ASN lookups.
	_, err = geo.OpenASN(path)
	assert.ErrorContains(t, err, "cannot answer ASN lookups")

	tests := []struct {
		ip   string
		want *wire.Geo
	}{
		{"81.2.69.142", &wire.Geo{Country: "GB", City: "London", Lat: 51.5142, Lon: -0.0931}},
		{"::ffff:81.2.69.142", &wire.Geo{Country: "GB", City: "London", Lat: 51.5142, Lon: -0.0931}},
		{"203.0.113.9", &wire.Geo{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.405}},
		{"198.51.100.1", &wire.Geo{Country: "BR", City: "São Paulo", Lat: -23.5505, Lon: -46.6333}},
		{"192.0.2.1", &wire.Geo{Country: "JP", City: "Tokyo", Lat: 35.6895, Lon: 139.6917}},
		{"45.0.1.2", &wire.Geo{Country: "US", City: "Ashburn", Lat: 39.0438, Lon: -77.4874}},
		{"5.0.0.1", &wire.Geo{Country: "RU", City: "Moscow", Lat: 55.7558, Lon: 37.6173}},
		{"36.0.0.1", &wire.Geo{Country: "CN", City: "Beijing", Lat: 39.9042, Lon: 116.4074}},
		{"2001:db8:1::1", &wire.Geo{Country: "NL", City: "Amsterdam", Lat: 52.3676, Lon: 4.9041}},
		{"185.0.0.1", &wire.Geo{Country: "GB"}}, // country only
		{"10.0.0.1", &wire.Geo{Local: true}},
		{"127.0.0.1", &wire.Geo{Local: true}},
		{"fe80::1", &wire.Geo{Local: true}},
		{"8.8.8.8", nil},      // not in the database
		{"2001:4860::1", nil}, // not in the database
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			g, err := l.Lookup(netip.MustParseAddr(tt.ip))
			require.NoError(t, err)
			assert.Equal(t, tt.want, g)
		})
	}
}

func TestLookupASN(t *testing.T) {
	city, err := geo.OpenCity(testDB(t, "BULWARK_TEST_GEOIP_DB"))
	require.NoError(t, err)
	asnPath := testDB(t, "BULWARK_TEST_GEOIP_ASN_DB")
	asn, err := geo.OpenASN(asnPath)
	require.NoError(t, err)
	assert.Equal(t, "GeoLite2-ASN", asn.Type())
	l := geo.NewLocator(city, asn)
	t.Cleanup(func() { assert.NoError(t, l.Close()) })

	_, err = geo.OpenCity(asnPath)
	assert.ErrorContains(t, err, "cannot answer City lookups")

	tests := []struct {
		ip   string
		want *wire.Geo
	}{
		{"45.0.1.2", &wire.Geo{Country: "US", City: "Ashburn", Lat: 39.0438, Lon: -77.4874, ASN: 14618, Org: "Amazon.com, Inc."}},
		{"45.4.0.1", &wire.Geo{Country: "DE", City: "Falkenstein", Lat: 50.4779, Lon: 12.3713, ASN: 24940, Org: "Hetzner Online GmbH"}},
		{"185.0.0.1", &wire.Geo{Country: "GB"}},
		{"8.8.8.8", nil},
		// The simulator's people, and its crawler in Google's network.
		{"24.0.3.4", &wire.Geo{Country: "US", City: "Philadelphia", Lat: 39.9526, Lon: -75.1652, ASN: 7922, Org: "Comcast Cable Communications, LLC"}},
		{"49.0.0.9", &wire.Geo{Country: "IN", City: "Mumbai", Lat: 19.076, Lon: 72.8777, ASN: 55836, Org: "Reliance Jio Infocomm Limited"}},
		{"66.249.66.1", &wire.Geo{Country: "US", City: "Mountain View", Lat: 37.4056, Lon: -122.0775, ASN: 15169, Org: "Google LLC"}},
	}
	for _, tt := range tests {
		g, err := l.Lookup(netip.MustParseAddr(tt.ip))
		require.NoError(t, err)
		assert.Equal(t, tt.want, g, tt.ip)
	}
}
