package config_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/config"
)

func parseMongo(t *testing.T, uri, wc string) (*config.Config, error) {
	t.Helper()
	doc := "routes: [{path: /, upstream: 'http://u:1'}]\nmongo:\n  uri: '" + uri + "'\n"
	if wc != "" {
		doc += "  write_concern: " + wc + "\n"
	}
	return config.Parse([]byte(doc), func(string) string { return "" })
}

// Any URI the driver takes loads: replica sets (several hosts, which
// net/url refuses as soon as one has no port), mongodb+srv, TLS and auth
// options.
func TestMongoURIForms(t *testing.T) {
	for _, uri := range []string{
		"mongodb://127.0.0.1:27017",
		"mongodb://mongo-0.mongo:27017,mongo-1.mongo:27017,mongo-2.mongo:27017/?replicaSet=rs0",
		"mongodb://mongo-0.mongo,mongo-1.mongo:27018/bulwark?replicaSet=rs0&readPreference=primaryPreferred",
		"mongodb://bulwark:p%40ss@[::1]:27017,h2/?replicaSet=rs0&authSource=admin",
		"mongodb://h1:27017/?tls=true&tlsCAFile=/etc/bulwark/ca.pem&tlsCertificateKeyFile=/etc/bulwark/client.pem",
		"mongodb://h1:27017/?w=majority&journal=true&wtimeoutMS=5000",
		"mongodb+srv://bulwark:secret@cluster0.example.net/?retryWrites=true&w=majority&appName=bulwark",
	} {
		cfg, err := parseMongo(t, uri, "")
		require.NoError(t, err, uri)
		assert.Equal(t, uri, cfg.Mongo.URI)
	}
}

func TestMongoURIRefused(t *testing.T) {
	for _, uri := range []string{
		"http://h1:27017",
		"mongodb://",
		"mongodb://h1:27017/?tls=true&ssl=false",              // the driver: tls and ssl disagree
		"mongodb://h1:notaport",                               // bad port
		"mongodb+srv://cluster0.example.net:27017/",           // SRV: no port
		"mongodb+srv://a.example.net,b.example.net/",          // SRV: one host
		"mongodb://user:hunter2@h1:27017/?authMechanism=NOPE", // unknown mechanism
	} {
		_, err := parseMongo(t, uri, "")
		require.Error(t, err, uri)
		assert.Contains(t, err.Error(), "mongo.uri", uri)
		assert.NotContains(t, err.Error(), "hunter2", "the error must not repeat a password")
	}
}

func TestMongoWriteConcern(t *testing.T) {
	for wc, want := range map[string]string{"": "", "majority": "majority", "1": "1", "'2'": "2", "3": "3"} {
		cfg, err := parseMongo(t, "mongodb://h1:27017", wc)
		require.NoError(t, err, wc)
		assert.Equal(t, want, cfg.Mongo.WriteConcern, wc)
	}
	for _, wc := range []string{"0", "-1", "Majority", "all", "1.5"} {
		_, err := parseMongo(t, "mongodb://h1:27017", wc)
		require.Error(t, err, wc)
		assert.Contains(t, err.Error(), "mongo.write_concern", wc)
	}
}

// FuzzMongoSettings: whatever mongo.uri and mongo.write_concern hold, the
// loader answers (no panic from it or the driver's parser), an error names
// the key, never repeats a password, and an accepted write concern is one
// the gateway can map.
func FuzzMongoSettings(f *testing.F) {
	f.Add("mongodb://h1:27017,h2/?replicaSet=rs0", "majority")
	f.Add("mongodb+srv://u:pw@cluster0.example.net/?w=majority", "2")
	f.Add("mongodb://u:pw@[::1]:27017/?tls=true&ssl=false", "0")
	f.Add("mongodb://u:p%40w@h/?authMechanism=SCRAM-SHA-256&authSource=$external", "")
	f.Add("mongodb://%zz@h", "-1")
	f.Fuzz(func(t *testing.T, uri, wc string) {
		env := map[string]string{config.EnvMongoURI: uri}
		doc := "routes: [{path: /, upstream: 'http://u:1'}]\nmongo: {write_concern: '" +
			strings.ReplaceAll(wc, "'", "''") + "'}\n"
		cfg, err := config.Parse([]byte(doc), func(k string) string { return env[k] })
		if err != nil {
			if strings.Contains(err.Error(), "mongo.uri") {
				if _, pw, ok := strings.Cut(uri, ":pw"); ok && len(pw) > 0 {
					assert.NotContains(t, err.Error(), uri)
				}
			}
			return
		}
		w := cfg.Mongo.WriteConcern
		if w != "" && w != "majority" {
			n, err := strconv.Atoi(w)
			require.NoError(t, err)
			require.GreaterOrEqual(t, n, 1)
		}
	})
}
