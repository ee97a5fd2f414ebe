// Command geoipgen writes Bulwark's small demo GeoIP database: a
// MaxMind-format file of database type "GeoLite2-City" (IPv6 tree with IPv4
// inserted, record size 28) that maps a handful of public and documentation
// ranges to real countries, cities and coordinates. It is made with
// github.com/maxmind/mmdbwriter so that no licensed database is committed.
//
// Each record carries the GeoLite2-City fields (continent, country,
// registered_country, city, location) and, where known, the GeoLite2-ASN
// fields autonomous_system_number and autonomous_system_organization.
// geoip2-golang refuses ASN() on a City-typed database, so the ASN data is
// also written to a separate "GeoLite2-ASN" file when -asn-out is given.
//
// Usage:
//
//	go run ./deploy/cmd/geoipgen -out var/geoip/demo-city.mmdb [-asn-out var/geoip/demo-asn.mmdb]
//
// The table of ranges is the slice demoRanges; add ranges there (for example
// for the traffic simulator).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "geoipgen:", err)
		os.Exit(1)
	}
}

// run parses args, builds the database(s) and writes them.
func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("geoipgen", flag.ContinueOnError)
	fs.SetOutput(stdout)
	out := fs.String("out", "", "path of the City database to write (required)")
	asnOut := fs.String("asn-out", "", "optional path of a GeoLite2-ASN database to write alongside")
	epoch := fs.Int64("epoch", 0, "build epoch (Unix seconds) in the metadata; 0 means now")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *out == "" {
		return errors.New("-out is required")
	}
	buildEpoch := *epoch
	if buildEpoch == 0 {
		buildEpoch = time.Now().Unix()
	}

	city, err := buildCity(demoRanges, buildEpoch)
	if err != nil {
		return err
	}
	if err := writeTree(city, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (GeoLite2-City, %d ranges)\n", *out, len(demoRanges))

	if *asnOut != "" {
		asn, n, err := buildASN(demoRanges, buildEpoch)
		if err != nil {
			return err
		}
		if err := writeTree(asn, *asnOut); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (GeoLite2-ASN, %d ranges)\n", *asnOut, n)
	}
	return nil
}

// newTree returns an empty IPv6 tree (IPv4 aliased into it) with record size
// 28. Reserved networks are allowed because the demo uses documentation
// ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).
func newTree(dbType, description string, epoch int64) (*mmdbwriter.Tree, error) {
	t, err := mmdbwriter.New(mmdbwriter.Options{
		BuildEpoch:              epoch,
		DatabaseType:            dbType,
		Description:             map[string]string{"en": description},
		IPVersion:               6,
		RecordSize:              28,
		Languages:               []string{"en"},
		IncludeReservedNetworks: true,
	})
	if err != nil {
		return nil, fmt.Errorf("new %s tree: %w", dbType, err)
	}
	return t, nil
}

func buildCity(ranges []geoRange, epoch int64) (*mmdbwriter.Tree, error) {
	t, err := newTree("GeoLite2-City", "Bulwark demo City database (synthetic, not MaxMind data)", epoch)
	if err != nil {
		return nil, err
	}
	for _, r := range ranges {
		network, rec, err := r.cityRecord()
		if err != nil {
			return nil, err
		}
		if err := t.Insert(network, rec); err != nil {
			return nil, fmt.Errorf("insert %s: %w", r.Network, err)
		}
	}
	return t, nil
}

func buildASN(ranges []geoRange, epoch int64) (*mmdbwriter.Tree, int, error) {
	t, err := newTree("GeoLite2-ASN", "Bulwark demo ASN database (synthetic, not MaxMind data)", epoch)
	if err != nil {
		return nil, 0, err
	}
	n := 0
	for _, r := range ranges {
		if r.ASN == 0 {
			continue
		}
		_, network, err := net.ParseCIDR(r.Network)
		if err != nil {
			return nil, 0, fmt.Errorf("range %q: %w", r.Network, err)
		}
		if err := t.Insert(network, r.asnFields(mmdbtype.Map{})); err != nil {
			return nil, 0, fmt.Errorf("insert %s: %w", r.Network, err)
		}
		n++
	}
	return t, n, nil
}

// writeTree writes t to path through a temporary file in the same directory,
// so a reader never sees a half-written database.
func writeTree(t *mmdbwriter.Tree, path string) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".geoipgen-*.mmdb")
	if err != nil {
		return fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := t.WriteTo(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	return nil
}
