package methodoverride

import (
	"net/http"
	"testing"
)

// BenchmarkStripHeaders is what the proxy adds to every forwarded
// request: a typical browser request's headers, none of them an override.
func BenchmarkStripHeaders(b *testing.B) {
	h := http.Header{
		"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64)"}, "Accept": {"text/html"}, "Accept-Language": {"en-GB"},
		"Cookie": {"session=abc123"}, "X-Forwarded-For": {"203.0.113.7"}, "X-Real-Ip": {"203.0.113.7"},
		"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"example.com"}, "Accept-Encoding": {"gzip"},
		"Sec-Fetch-Mode": {"navigate"},
	}
	b.ReportAllocs()
	for b.Loop() {
		StripHeaders(h)
	}
}

// BenchmarkFromQuery is the query check on a request where roles are
// checked.
func BenchmarkFromQuery(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if FromQuery("page=2&sort=name&filter=active&q=some%20search") != nil {
			b.Fatal("found")
		}
	}
}
