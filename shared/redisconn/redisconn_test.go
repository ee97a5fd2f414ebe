package redisconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		url   string
		mode  Mode
		addrs []string
		check func(t *testing.T, o *redis.UniversalOptions)
	}{
		{url: "redis://127.0.0.1:6379/0", mode: Single, addrs: []string{"127.0.0.1:6379"}},
		{url: "redis://localhost", mode: Single, addrs: []string{"localhost:6379"}},
		{url: "redis://u:p@h:1/3?dial_timeout=2s", mode: Single, addrs: []string{"h:1"}, check: func(t *testing.T, o *redis.UniversalOptions) {
			if o.DB != 3 || o.Username != "u" || o.Password != "p" || o.DialTimeout != 2*time.Second {
				t.Errorf("db %d user %q pass %q dial %v", o.DB, o.Username, o.Password, o.DialTimeout)
			}
		}},
		{url: "rediss://h:1", mode: Single, addrs: []string{"h:1"}, check: func(t *testing.T, o *redis.UniversalOptions) {
			if o.TLSConfig == nil || o.TLSConfig.ServerName != "h" {
				t.Errorf("TLS %+v", o.TLSConfig)
			}
		}},
		{url: "redis://a:1?addr=b:2&addr=c:3", mode: Cluster, addrs: []string{"a:1", "b:2", "c:3"}},
		{url: "redis://u:p@a:1/0?addr=b:2&read_timeout=1s", mode: Cluster, addrs: []string{"a:1", "b:2"}, check: func(t *testing.T, o *redis.UniversalOptions) {
			if o.Username != "u" || o.Password != "p" || o.ReadTimeout != time.Second || !o.IsClusterMode {
				t.Errorf("user %q pass %q read %v cluster %v", o.Username, o.Password, o.ReadTimeout, o.IsClusterMode)
			}
		}},
		{url: "rediss://a:1?addr=b:2", mode: Cluster, addrs: []string{"a:1", "b:2"}, check: func(t *testing.T, o *redis.UniversalOptions) {
			if o.TLSConfig == nil {
				t.Error("no TLS")
			}
		}},
		{url: "redis://s1:26379?master_name=mymaster&addr=s2:26379&addr=s3:26379", mode: Sentinel, addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, check: func(t *testing.T, o *redis.UniversalOptions) {
			if o.MasterName != "mymaster" {
				t.Errorf("master %q", o.MasterName)
			}
		}},
		{url: "redis://su:sp@s1:26379/2?master_name=m&password=mp", mode: Sentinel, addrs: []string{"s1:26379"}, check: func(t *testing.T, o *redis.UniversalOptions) {
			if o.SentinelUsername != "su" || o.SentinelPassword != "sp" || o.Password != "mp" || o.DB != 2 {
				t.Errorf("sentinel %q/%q master pass %q db %d", o.SentinelUsername, o.SentinelPassword, o.Password, o.DB)
			}
		}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			o, err := Options(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if m := ModeOf(o); m != tc.mode {
				t.Errorf("mode %s, want %s", m, tc.mode)
			}
			if !slices.Equal(o.Addrs, tc.addrs) {
				t.Errorf("addrs %v, want %v", o.Addrs, tc.addrs)
			}
			if tc.check != nil {
				tc.check(t, o)
			}
			// The client it makes is of the kind the mode says.
			c := New(o)
			defer c.Close()
			var got Mode
			switch c.(type) {
			case *redis.ClusterClient:
				got = Cluster
			case *redis.Client:
				got = Single
				if tc.mode == Sentinel {
					got = Sentinel // a failover client is a *redis.Client
				}
			}
			if got != tc.mode {
				t.Errorf("client %T for mode %s", c, tc.mode)
			}
		})
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"http://h:1", "scheme"},
		{"h:1", "scheme"},
		{"redis://", "host"},
		{"redis://h:1/x", "database"},
		{"redis://h:1?bogus=1", "bogus"},
		{"redis://a:1/2?addr=b:2", "database 0"},
		{"redis://a:1?addr=nohost", "addr"},
		{"redis://a:1?addr=b:2&bogus=1", "bogus"},
		{"redis://s:1?master_name=", "master_name"},
		{"redis://s:1?master_name=m&addr=x", "addr"},
		{"redis://s:1?master_name=m&bogus=1", "bogus"},
		{"redis://p:secret@h:1/x", "database"},
		{"redis://h:1/%zz", "URL"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := Options(tc.url)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// FuzzOptions: any input is refused or gives options a client can be made
// from, of the mode the URL's parameters name, seeded by the URL's host.
func FuzzOptions(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379/0", "rediss://u:p@h:1/2", "redis://a:1?addr=b:2&addr=c:3",
		"redis://s:1?master_name=m&addr=t:2", "redis://h", "redis://[::1]:6379", "redis://a:1?addr=b:2&addr=b:2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := Options(s)
		if err != nil {
			return
		}
		u, perr := url.Parse(s)
		if perr != nil {
			t.Fatalf("accepted an unparseable URL %q", s)
		}
		q := u.Query()
		want := Single
		switch {
		case q.Has("master_name"):
			want = Sentinel
		case q.Has("addr"):
			want = Cluster
		}
		if m := ModeOf(o); m != want {
			t.Fatalf("%q: mode %s, want %s", s, m, want)
		}
		if len(o.Addrs) != 1+len(q["addr"]) && want != Single {
			t.Fatalf("%q: addrs %v", s, o.Addrs)
		}
		if len(o.Addrs) == 0 || o.Addrs[0] == "" {
			t.Fatalf("%q: no address", s)
		}
	})
}

// A cluster client rereads its slot map on the errors of a node that does
// not answer, never on an answer or on an error raised before the network
// (the gateway's open breaker).
func TestNodeFailed(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{fmt.Errorf("observe: %w", refused), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{redis.Nil, false},
		{errors.New("redis circuit open"), false},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
	} {
		if got := NodeFailed(tc.err); got != tc.want {
			t.Errorf("NodeFailed(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
