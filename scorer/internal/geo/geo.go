// Package geo answers "where is this address?" from MaxMind-format
// databases read with geoip2-golang: a City or Country database (GeoLite2,
// GeoIP2, DB-IP or Bulwark's demo file) for country, city and coordinates,
// and optionally an ASN database for the autonomous system. Private,
// loopback, link-local and unspecified addresses are "local" and never
// looked up; an address neither database knows gives a nil *wire.Geo.
package geo

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/bulwarkgw/bulwark/shared/wire"
	"github.com/oschwald/geoip2-golang/v2"
)

// DB is one opened database.
type DB struct {
	r      *geoip2.Reader
	dbType string
}

// Type returns the database type from the file's metadata, e.g.
// "GeoLite2-City".
func (db *DB) Type() string { return db.dbType }

// Close releases the database.
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	return db.r.Close()
}

// OpenCity opens a database that answers City lookups: any City, Country or
// Enterprise database.
func OpenCity(path string) (*DB, error) {
	return open(path, "City", func(r *geoip2.Reader) error {
		_, err := r.City(netip.IPv4Unspecified())
		return err
	})
}

// OpenASN opens a database that answers ASN lookups: GeoLite2-ASN (or
// DB-IP's ASN-compatible file) or GeoIP2-ISP.
func OpenASN(path string) (*DB, error) {
	return open(path, "ASN", func(r *geoip2.Reader) error {
		_, err := r.ASN(netip.IPv4Unspecified())
		return err
	})
}

func open(path, kind string, probe func(*geoip2.Reader) error) (*DB, error) {
	r, err := geoip2.Open(path)
	if err != nil {
		if r != nil {
			_ = r.Close()
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	dbType := r.Metadata().DatabaseType
	if err := probe(r); err != nil {
		_ = r.Close()
		var invalid geoip2.InvalidMethodError
		if errors.As(err, &invalid) {
			return nil, fmt.Errorf("%s: a %s database cannot answer %s lookups", path, dbType, kind)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &DB{r: r, dbType: dbType}, nil
}

// Locator looks addresses up in a City database and an ASN database, either
// of which may be missing. A nil *Locator knows only local addresses. It is
// safe for concurrent use.
type Locator struct {
	city *DB
	asn  *DB
}

// NewLocator returns a Locator over the given databases; either may be nil.
// The Locator owns them: Close closes both.
func NewLocator(city, asn *DB) *Locator {
	return &Locator{city: city, asn: asn}
}

// Close closes the Locator's databases.
func (l *Locator) Close() error {
	if l == nil {
		return nil
	}
	return errors.Join(l.city.Close(), l.asn.Close())
}

// IsLocal reports whether addr is private, loopback, link-local or
// unspecified: an address with no place on the map and no geo risk.
func IsLocal(addr netip.Addr) bool {
	addr = addr.Unmap()
	return addr.IsPrivate() || addr.IsLoopback() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() || addr.IsUnspecified()
}

// Lookup returns what the databases know about addr: Local for a local
// address, nil when neither database has the address. The country is the
// one the address is located in, or, when the database only has that, the
// one its network is registered in.
func (l *Locator) Lookup(addr netip.Addr) (*wire.Geo, error) {
	if !addr.IsValid() {
		return nil, errors.New("lookup of an invalid address")
	}
	addr = addr.Unmap()
	if IsLocal(addr) {
		return &wire.Geo{Local: true}, nil
	}
	if l == nil {
		return nil, nil
	}
	var g wire.Geo
	found := false
	if l.city != nil {
		rec, err := l.city.r.City(addr)
		if err != nil {
			return nil, fmt.Errorf("city lookup %s: %w", addr, err)
		}
		if rec.HasData() {
			found = true
			g.Country = rec.Country.ISOCode
			if g.Country == "" {
				g.Country = rec.RegisteredCountry.ISOCode
			}
			g.City = rec.City.Names.English
			if rec.Location.HasCoordinates() {
				g.Lat, g.Lon = *rec.Location.Latitude, *rec.Location.Longitude
			}
		}
	}
	if l.asn != nil {
		rec, err := l.asn.r.ASN(addr)
		if err != nil {
			return nil, fmt.Errorf("asn lookup %s: %w", addr, err)
		}
		if rec.HasData() {
			found = true
			g.ASN = rec.AutonomousSystemNumber
			g.Org = rec.AutonomousSystemOrganization
		}
	}
	if !found {
		return nil, nil
	}
	return &g, nil
}
