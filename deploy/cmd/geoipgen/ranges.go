package main

import (
	"fmt"
	"net"

	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// geoRange is one network of the demo database. City "" makes a
// country-level record with no city and no location. ASN 0 leaves the ASN
// fields out.
type geoRange struct {
	Network   string // CIDR, IPv4 or IPv6
	Continent string // continent code: AF, AN, AS, EU, NA, OC, SA
	Country   string // ISO 3166-1 alpha-2
	City      string // English name; "" for a country-only record
	Lat, Lon  float64
	TimeZone  string // IANA zone, with City
	ASN       uint32
	Org       string // autonomous_system_organization
}

// demoRanges is the whole demo table. The documentation ranges stand for
// residential clients; the 45.x.0.0/16 ranges stand for hosting providers
// and carry those providers' real AS numbers and organisation names, as do
// the clouds' real ranges (AWS, Azure, Google Cloud, DigitalOcean, OVH,
// Hetzner) and the crawlers' networks (Google's, Microsoft's). Keep it
// sorted by purpose, not address. The traffic simulator (deploy/cmd/simulator)
// draws its clients from these ranges: people from the residential ones,
// the botnet from the 45.x hosting ones, scanners from the clouds' and
// residential ISPs', the crawlers from Google's and Microsoft's.
var demoRanges = []geoRange{
	// As in MaxMind's own test database.
	{Network: "81.2.69.0/24", Continent: "EU", Country: "GB", City: "London", Lat: 51.5142, Lon: -0.0931, TimeZone: "Europe/London", ASN: 20712, Org: "Andrews & Arnold Ltd"},

	// Documentation ranges (RFC 5737, RFC 3849) as residential clients.
	{Network: "203.0.113.0/24", Continent: "EU", Country: "DE", City: "Berlin", Lat: 52.5200, Lon: 13.4050, TimeZone: "Europe/Berlin", ASN: 3320, Org: "Deutsche Telekom AG"},
	{Network: "198.51.100.0/24", Continent: "SA", Country: "BR", City: "São Paulo", Lat: -23.5505, Lon: -46.6333, TimeZone: "America/Sao_Paulo", ASN: 26599, Org: "TELEFONICA BRASIL S.A"},
	{Network: "192.0.2.0/24", Continent: "AS", Country: "JP", City: "Tokyo", Lat: 35.6895, Lon: 139.6917, TimeZone: "Asia/Tokyo", ASN: 4713, Org: "NTT Communications Corporation"},
	{Network: "2001:db8::/32", Continent: "EU", Country: "NL", City: "Amsterdam", Lat: 52.3676, Lon: 4.9041, TimeZone: "Europe/Amsterdam", ASN: 1136, Org: "KPN B.V."},

	// Hosting and datacenter providers (real ASNs and organisations).
	{Network: "45.0.0.0/16", Continent: "NA", Country: "US", City: "Ashburn", Lat: 39.0438, Lon: -77.4874, TimeZone: "America/New_York", ASN: 14618, Org: "Amazon.com, Inc."},
	{Network: "45.1.0.0/16", Continent: "NA", Country: "US", City: "Boardman", Lat: 45.8399, Lon: -119.7006, TimeZone: "America/Los_Angeles", ASN: 16509, Org: "Amazon.com, Inc."},
	{Network: "45.2.0.0/16", Continent: "NA", Country: "US", City: "Clifton", Lat: 40.8584, Lon: -74.1638, TimeZone: "America/New_York", ASN: 14061, Org: "DigitalOcean, LLC"},
	{Network: "45.3.0.0/16", Continent: "EU", Country: "FR", City: "Roubaix", Lat: 50.6942, Lon: 3.1746, TimeZone: "Europe/Paris", ASN: 16276, Org: "OVH SAS"},
	{Network: "45.4.0.0/16", Continent: "EU", Country: "DE", City: "Falkenstein", Lat: 50.4779, Lon: 12.3713, TimeZone: "Europe/Berlin", ASN: 24940, Org: "Hetzner Online GmbH"},

	// Residential networks the traffic simulator draws people from.
	{Network: "24.0.0.0/16", Continent: "NA", Country: "US", City: "Philadelphia", Lat: 39.9526, Lon: -75.1652, TimeZone: "America/New_York", ASN: 7922, Org: "Comcast Cable Communications, LLC"},
	{Network: "90.0.0.0/16", Continent: "EU", Country: "FR", City: "Paris", Lat: 48.8566, Lon: 2.3522, TimeZone: "Europe/Paris", ASN: 3215, Org: "Orange S.A."},
	{Network: "49.0.0.0/16", Continent: "AS", Country: "IN", City: "Mumbai", Lat: 19.0760, Lon: 72.8777, TimeZone: "Asia/Kolkata", ASN: 55836, Org: "Reliance Jio Infocomm Limited"},

	// Google's crawler network (Googlebot's published range), so that the
	// simulator's verified crawler is located where the real one is.
	{Network: "66.249.64.0/19", Continent: "NA", Country: "US", City: "Mountain View", Lat: 37.4056, Lon: -122.0775, TimeZone: "America/Los_Angeles", ASN: 15169, Org: "Google LLC"},

	// The big clouds' and hosters' own ranges, with their real AS numbers
	// (all in the scorer's DefaultHostingASNs), so that a run of the
	// simulator exercises the hosting feature as a real ASN database would.
	// The simulator's scanners come from here.
	{Network: "3.80.0.0/12", Continent: "NA", Country: "US", City: "Ashburn", Lat: 39.0438, Lon: -77.4874, TimeZone: "America/New_York", ASN: 14618, Org: "Amazon.com, Inc."},
	{Network: "54.80.0.0/12", Continent: "NA", Country: "US", City: "Ashburn", Lat: 39.0438, Lon: -77.4874, TimeZone: "America/New_York", ASN: 14618, Org: "Amazon.com, Inc."},
	{Network: "18.184.0.0/15", Continent: "EU", Country: "DE", City: "Frankfurt am Main", Lat: 50.1109, Lon: 8.6821, TimeZone: "Europe/Berlin", ASN: 16509, Org: "Amazon.com, Inc."},
	{Network: "13.64.0.0/11", Continent: "NA", Country: "US", City: "San Jose", Lat: 37.3394, Lon: -121.8950, TimeZone: "America/Los_Angeles", ASN: 8075, Org: "Microsoft Corporation"},
	{Network: "34.64.0.0/10", Continent: "NA", Country: "US", City: "Council Bluffs", Lat: 41.2619, Lon: -95.8608, TimeZone: "America/Chicago", ASN: 396982, Org: "Google LLC"},
	{Network: "159.89.0.0/16", Continent: "NA", Country: "US", City: "North Bergen", Lat: 40.8043, Lon: -74.0121, TimeZone: "America/New_York", ASN: 14061, Org: "DigitalOcean, LLC"},
	{Network: "167.99.0.0/16", Continent: "EU", Country: "DE", City: "Frankfurt am Main", Lat: 50.1109, Lon: 8.6821, TimeZone: "Europe/Berlin", ASN: 14061, Org: "DigitalOcean, LLC"},
	{Network: "51.68.0.0/16", Continent: "EU", Country: "FR", City: "Gravelines", Lat: 50.9865, Lon: 2.1281, TimeZone: "Europe/Paris", ASN: 16276, Org: "OVH SAS"},
	{Network: "137.74.0.0/16", Continent: "EU", Country: "FR", City: "Roubaix", Lat: 50.6942, Lon: 3.1746, TimeZone: "Europe/Paris", ASN: 16276, Org: "OVH SAS"},
	{Network: "88.198.0.0/16", Continent: "EU", Country: "DE", City: "Nuremberg", Lat: 49.4521, Lon: 11.0767, TimeZone: "Europe/Berlin", ASN: 24940, Org: "Hetzner Online GmbH"},
	{Network: "95.216.0.0/16", Continent: "EU", Country: "FI", City: "Helsinki", Lat: 60.1699, Lon: 24.9384, TimeZone: "Europe/Helsinki", ASN: 24940, Org: "Hetzner Online GmbH"},

	// Microsoft's network (AS8075, Azure's too: a hosting ASN), where
	// Bingbot crawls from; the default allow rule lists only three /24s
	// of it (157.55.39.0/24, 207.46.13.0/24, 40.77.167.0/24), the rest is
	// vouched for by reverse DNS (*.search.msn.com).
	{Network: "157.55.0.0/16", Continent: "NA", Country: "US", City: "Redmond", Lat: 47.6740, Lon: -122.1215, TimeZone: "America/Los_Angeles", ASN: 8075, Org: "Microsoft Corporation"},
	{Network: "207.46.0.0/16", Continent: "NA", Country: "US", City: "Redmond", Lat: 47.6740, Lon: -122.1215, TimeZone: "America/Los_Angeles", ASN: 8075, Org: "Microsoft Corporation"},
	{Network: "40.77.0.0/16", Continent: "NA", Country: "US", City: "Boydton", Lat: 36.6676, Lon: -78.3875, TimeZone: "America/New_York", ASN: 8075, Org: "Microsoft Corporation"},
	{Network: "52.160.0.0/11", Continent: "NA", Country: "US", City: "Boydton", Lat: 36.6676, Lon: -78.3875, TimeZone: "America/New_York", ASN: 8075, Org: "Microsoft Corporation"},

	// More residential ISPs (not hosting): scanners on people's
	// machines come from here.
	{Network: "86.128.0.0/16", Continent: "EU", Country: "GB", City: "Manchester", Lat: 53.4808, Lon: -2.2426, TimeZone: "Europe/London", ASN: 2856, Org: "British Telecommunications PLC"},
	{Network: "73.0.0.0/16", Continent: "NA", Country: "US", City: "Chicago", Lat: 41.8781, Lon: -87.6298, TimeZone: "America/Chicago", ASN: 7922, Org: "Comcast Cable Communications, LLC"},

	// Other countries.
	{Network: "5.0.0.0/16", Continent: "EU", Country: "RU", City: "Moscow", Lat: 55.7558, Lon: 37.6173, TimeZone: "Europe/Moscow", ASN: 12389, Org: "PJSC Rostelecom"},
	{Network: "36.0.0.0/16", Continent: "AS", Country: "CN", City: "Beijing", Lat: 39.9042, Lon: 116.4074, TimeZone: "Asia/Shanghai", ASN: 4134, Org: "Chinanet"},
	{Network: "177.0.0.0/16", Continent: "SA", Country: "BR", City: "Rio de Janeiro", Lat: -22.9068, Lon: -43.1729, TimeZone: "America/Sao_Paulo", ASN: 28573, Org: "Claro NXT Telecomunicacoes Ltda"},
	{Network: "175.45.176.0/22", Continent: "AS", Country: "KP", City: "Pyongyang", Lat: 39.0392, Lon: 125.7625, TimeZone: "Asia/Pyongyang", ASN: 131279, Org: "Ryugyong-dong"},

	// Country only: no city, no location, no ASN.
	{Network: "185.0.0.0/16", Continent: "EU", Country: "GB"},
}

// countryNames holds the English name of every country used in demoRanges.
var countryNames = map[string]string{
	"BR": "Brazil",
	"CN": "China",
	"DE": "Germany",
	"FI": "Finland",
	"FR": "France",
	"GB": "United Kingdom",
	"IN": "India",
	"JP": "Japan",
	"KP": "North Korea",
	"NL": "Netherlands",
	"RU": "Russia",
	"US": "United States",
}

// continentNames holds the English name of every continent code.
var continentNames = map[string]string{
	"AF": "Africa",
	"AN": "Antarctica",
	"AS": "Asia",
	"EU": "Europe",
	"NA": "North America",
	"OC": "Oceania",
	"SA": "South America",
}

// cityRecord returns the parsed network and its GeoLite2-City record.
func (r geoRange) cityRecord() (*net.IPNet, mmdbtype.Map, error) {
	_, network, err := net.ParseCIDR(r.Network)
	if err != nil {
		return nil, nil, fmt.Errorf("range %q: %w", r.Network, err)
	}
	country, ok := countryNames[r.Country]
	if !ok {
		return nil, nil, fmt.Errorf("range %s: no English name for country %q", r.Network, r.Country)
	}
	continent, ok := continentNames[r.Continent]
	if !ok {
		return nil, nil, fmt.Errorf("range %s: unknown continent %q", r.Network, r.Continent)
	}
	countryRec := mmdbtype.Map{
		"iso_code": mmdbtype.String(r.Country),
		"names":    mmdbtype.Map{"en": mmdbtype.String(country)},
	}
	rec := mmdbtype.Map{
		"continent": mmdbtype.Map{
			"code":  mmdbtype.String(r.Continent),
			"names": mmdbtype.Map{"en": mmdbtype.String(continent)},
		},
		"country":            countryRec,
		"registered_country": countryRec,
	}
	if r.City != "" {
		rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(r.City)}}
		loc := mmdbtype.Map{
			"latitude":        mmdbtype.Float64(r.Lat),
			"longitude":       mmdbtype.Float64(r.Lon),
			"accuracy_radius": mmdbtype.Uint16(20),
		}
		if r.TimeZone != "" {
			loc["time_zone"] = mmdbtype.String(r.TimeZone)
		}
		rec["location"] = loc
	}
	return network, r.asnFields(rec), nil
}

// asnFields adds the GeoLite2-ASN fields to m when the range has an ASN.
func (r geoRange) asnFields(m mmdbtype.Map) mmdbtype.Map {
	if r.ASN != 0 {
		m["autonomous_system_number"] = mmdbtype.Uint32(r.ASN)
		m["autonomous_system_organization"] = mmdbtype.String(r.Org)
	}
	return m
}
