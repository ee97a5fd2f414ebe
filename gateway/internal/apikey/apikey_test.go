package apikey_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwarkgw/bulwark/gateway/internal/apikey"
	"github.com/bulwarkgw/bulwark/gateway/internal/testenv"
)

var t0 = time.Unix(1_800_000_000, 0)

func newStore(t *testing.T, ttl time.Duration) (*apikey.Store, redis.UniversalClient, string) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	s, err := apikey.New(rdb, prefix, ttl)
	require.NoError(t, err)
	return s, rdb, prefix
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestNewRejectsBadArguments(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	tests := []struct {
		name   string
		rdb    redis.UniversalClient
		prefix string
		ttl    time.Duration
		errMsg string
	}{
		{"nil client", nil, "p:", time.Hour, "nil redis client"},
		{"empty prefix", rdb, "", time.Hour, "empty key prefix"},
		{"hash tag in prefix", rdb, "p{x}:", time.Hour, "must not contain"},
		{"zero ttl", rdb, "p:", 0, "key ttl"},
		{"negative ttl", rdb, "p:", -time.Second, "key ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := apikey.New(tt.rdb, tt.prefix, tt.ttl)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.Contains(t, err.Error(), tt.errMsg)
		})
	}
	s, err := apikey.New(rdb, "p:", time.Hour)
	require.NoError(t, err)
	assert.NotNil(t, s)
}

func TestMintAndLookup(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, 3*time.Second)
	ctx := context.Background()

	key, sess, err := s.Mint(ctx, "user", t0)
	require.NoError(t, err)
	require.Len(t, key, apikey.KeyLen)
	_, err = hex.DecodeString(key)
	require.NoError(t, err, "key is hex")
	assert.Equal(t, apikey.Session{ID: sha(key)[:16], Role: "user", Expires: t0.Add(3 * time.Second)}, sess)

	other, _, err := s.Mint(ctx, "admin", t0)
	require.NoError(t, err)
	assert.NotEqual(t, key, other, "keys are random")

	tests := []struct {
		name    string
		key     string
		at      time.Time
		want    apikey.Session
		wantErr error
	}{
		{"at mint", key, t0, sess, nil},
		{"S08 one second later", key, t0.Add(time.Second), sess, nil},
		{"just before expiry", key, t0.Add(3*time.Second - time.Millisecond), sess, nil},
		{"S08 at expiry", key, t0.Add(3 * time.Second), apikey.Session{}, apikey.ErrNotFound},
		{"S08 after expiry", key, t0.Add(3500 * time.Millisecond), apikey.Session{}, apikey.ErrNotFound},
		{"unknown well-formed key", strings.Repeat("ab", 32), t0, apikey.Session{}, apikey.ErrNotFound},
		{"upper-case spelling", strings.ToUpper(key), t0, apikey.Session{}, apikey.ErrNotFound},
		{"empty", "", t0, apikey.Session{}, apikey.ErrNotFound},
		{"seed 000 16-hex key", key[:16], t0, apikey.Session{}, apikey.ErrNotFound},
		{"too long", key + "0", t0, apikey.Session{}, apikey.ErrNotFound},
		{"not hex", "nope" + key[4:], t0, apikey.Session{}, apikey.ErrNotFound},
		{"the hash is not a key", sha(key), t0, apikey.Session{}, apikey.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Lookup(ctx, tt.key, tt.at)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), key, "errors never carry a key")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want.ID, got.ID)
			assert.Equal(t, tt.want.Role, got.Role)
			assert.True(t, tt.want.Expires.Equal(got.Expires))
		})
	}
}

func TestLookupOfMalformedKeyNeedsNoRedis(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 50 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := apikey.New(rdb, "p:", time.Hour)
	require.NoError(t, err)
	_, err = s.Lookup(context.Background(), "nope", t0)
	require.ErrorIs(t, err, apikey.ErrNotFound, "refused before any round trip")
	_, err = s.Lookup(context.Background(), strings.Repeat("0", 64), t0)
	require.Error(t, err)
	assert.NotErrorIs(t, err, apikey.ErrNotFound, "a well-formed key does reach Redis")
}

// TestStorageHoldsOnlyHashes dumps every key under the prefix and checks
// that neither a name nor a value contains a minted key.
func TestStorageHoldsOnlyHashes(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t, time.Hour)
	ctx := context.Background()
	var keys []string
	for _, role := range []string{"user", "admin", ""} {
		k, sess, err := s.Mint(ctx, role, t0)
		require.NoError(t, err)
		keys = append(keys, k)
		_, _, err = s.Fail(ctx, netip.MustParseAddr("203.0.113.9"), 5*time.Second, 5, t0)
		require.NoError(t, err)
		_, err = s.Lookup(ctx, k, t0)
		require.NoError(t, err)
		require.Equal(t, role, sess.Role)
	}

	var dump []string
	names, err := testenv.Keys(ctx, rdb, prefix+"*")
	require.NoError(t, err)
	for _, name := range names {
		dump = append(dump, name)
		typ, err := rdb.Type(ctx, name).Result()
		require.NoError(t, err)
		switch typ {
		case "string":
			dump = append(dump, rdb.Get(ctx, name).Val())
		case "hash":
			for f, v := range rdb.HGetAll(ctx, name).Val() {
				dump = append(dump, f, v)
			}
		case "zset":
			dump = append(dump, rdb.ZRange(ctx, name, 0, -1).Val()...)
		default:
			t.Fatalf("unexpected %s key %s", typ, name)
		}
		ttl, err := rdb.PTTL(ctx, name).Result()
		require.NoError(t, err)
		assert.Positive(t, ttl, "every key expires: %s", name)
		assert.LessOrEqual(t, ttl, time.Hour)
	}
	require.Len(t, dump, 3*(1+4)+3*(1+1)+1+3, "3 sessions (hash of 2 fields), 3 indexes, 1 failure log of 3 entries")
	all := strings.Join(dump, "\n")
	for _, k := range keys {
		assert.NotContains(t, all, k)
		assert.Contains(t, all, sha(k), "stored under its hash")
	}
}

func TestSessionKeysExpireInRedis(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t, 3*time.Second)
	ctx := context.Background()
	_, sess, err := s.Mint(ctx, "user", time.Now())
	require.NoError(t, err)
	names, err := testenv.Keys(ctx, rdb, prefix+"apikey:{"+sess.ID+"}*")
	require.NoError(t, err)
	require.Len(t, names, 2, "session and revoke index share the ID hash tag")
	for _, n := range names {
		ttl := rdb.PTTL(ctx, n).Val()
		assert.Greater(t, ttl, 2*time.Second, n)
		assert.LessOrEqual(t, ttl, 3*time.Second, n)
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, time.Hour)
	ctx := context.Background()

	tests := []struct {
		name string
		id   func(key string, sess apikey.Session) string
	}{
		{"by ID", func(_ string, sess apikey.Session) string { return sess.ID }},
		{"by ID in upper case", func(_ string, sess apikey.Session) string { return strings.ToUpper(sess.ID) }},
		{"by full hash", func(key string, _ apikey.Session) string { return sha(key) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, sess, err := s.Mint(ctx, "user", t0)
			require.NoError(t, err)
			keep, _, err := s.Mint(ctx, "user", t0)
			require.NoError(t, err)

			require.NoError(t, s.Revoke(ctx, tt.id(key, sess)))
			_, err = s.Lookup(ctx, key, t0)
			require.ErrorIs(t, err, apikey.ErrNotFound, "revoked key is refused")
			_, err = s.Lookup(ctx, keep, t0)
			require.NoError(t, err, "other keys stay valid")

			require.ErrorIs(t, s.Revoke(ctx, sess.ID), apikey.ErrNotFound, "second revoke by ID")
			require.ErrorIs(t, s.Revoke(ctx, sha(key)), apikey.ErrNotFound, "second revoke by hash")
		})
	}

	bad := []string{"", "zz", strings.Repeat("0", 16), strings.Repeat("0", 64), strings.Repeat("x", 16), strings.Repeat("0", 17)}
	for _, id := range bad {
		err := s.Revoke(ctx, id)
		require.ErrorIs(t, err, apikey.ErrNotFound, "id %q", id)
	}

	// Revoking by the key itself must not work: the key is not an ID.
	key, _, err := s.Mint(ctx, "user", t0)
	require.NoError(t, err)
	require.ErrorIs(t, s.Revoke(ctx, key), apikey.ErrNotFound)
	_, err = s.Lookup(ctx, key, t0)
	require.NoError(t, err)
}

func TestFail(t *testing.T) {
	t.Parallel()
	type step struct {
		at       time.Duration // after t0
		count    int
		exceeded bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"S05 six within 5s: the 6th exceeds", []step{
			{0, 1, false}, {500 * time.Millisecond, 2, false}, {time.Second, 3, false},
			{2 * time.Second, 4, false}, {3 * time.Second, 5, false}, {4 * time.Second, 6, true},
			{4500 * time.Millisecond, 6, true},
		}},
		{"S06 six spaced 1.1s apart never exceed", []step{
			{0, 1, false}, {1100 * time.Millisecond, 2, false}, {2200 * time.Millisecond, 3, false},
			{3300 * time.Millisecond, 4, false}, {4400 * time.Millisecond, 5, false}, {5500 * time.Millisecond, 5, false},
		}},
		{"a failure exactly one window old still counts", []step{
			{0, 1, false}, {time.Second, 2, false}, {2 * time.Second, 3, false},
			{3 * time.Second, 4, false}, {4 * time.Second, 5, false}, {5 * time.Second, 6, true},
			{5001 * time.Millisecond, 6, true}, {7002 * time.Millisecond, 5, false},
		}},
		{"a burst ages out completely", []step{
			{0, 1, false}, {0, 2, false}, {0, 3, false}, {0, 4, false}, {0, 5, false}, {0, 6, true},
			{0, 6, true}, {0, 6, true}, // saturates at threshold+1
			{5001 * time.Millisecond, 1, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _, _ := newStore(t, time.Hour)
			ctx := context.Background()
			ip := netip.MustParseAddr("127.0.0.3")
			for i, st := range tt.steps {
				n, exceeded, err := s.Fail(ctx, ip, 5*time.Second, 5, t0.Add(st.at))
				require.NoError(t, err)
				assert.Equal(t, st.count, n, "step %d count", i)
				assert.Equal(t, st.exceeded, exceeded, "step %d exceeded", i)
			}
		})
	}
}

func TestFailIsPerIP(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, time.Hour)
	ctx := context.Background()
	bad, good := netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4")
	for range 6 {
		_, _, err := s.Fail(ctx, bad, 5*time.Second, 5, t0)
		require.NoError(t, err)
	}
	n, exceeded, err := s.Fail(ctx, good, 5*time.Second, 5, t0)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.False(t, exceeded)

	// An IPv4-mapped IPv6 address is the same client as its IPv4 form.
	n, err = s.Failures(ctx, netip.MustParseAddr("::ffff:127.0.0.3"), 5*time.Second, t0)
	require.NoError(t, err)
	assert.Equal(t, 6, n)
	n, err = s.Failures(ctx, bad, 5*time.Second, t0.Add(6*time.Second))
	require.NoError(t, err)
	assert.Equal(t, 0, n, "Failures only reads the window")
	n, err = s.Failures(ctx, netip.MustParseAddr("127.0.0.99"), 5*time.Second, t0)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
}

func TestFailRejectsBadArguments(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, time.Hour)
	ctx := context.Background()
	ip := netip.MustParseAddr("127.0.0.3")
	tests := []struct {
		name      string
		ip        netip.Addr
		window    time.Duration
		threshold int
	}{
		{"invalid ip", netip.Addr{}, 5 * time.Second, 5},
		{"zero window", ip, 0, 5},
		{"sub-millisecond window", ip, time.Microsecond, 5},
		{"negative threshold", ip, 5 * time.Second, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.Fail(ctx, tt.ip, tt.window, tt.threshold, t0)
			require.Error(t, err)
		})
	}
}

// TestKeysOfOneAccount: a key minted for a login remembers the account
// (hashed, never the login), so the gateway judges all of one account's
// keys as one principal.
func TestKeysOfOneAccount(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	s, err := apikey.New(rdb, prefix, time.Hour)
	require.NoError(t, err)
	ctx, now := context.Background(), time.Now()
	acct := apikey.AccountOf("  Alice@Example.com ")
	assert.Equal(t, apikey.AccountOf("alice@example.com"), acct, "trimmed and case-folded")
	assert.Regexp(t, `^[0-9a-f]{16}$`, acct)
	assert.Empty(t, apikey.AccountOf(" "))
	k1, _, err := s.MintFor(ctx, "user", acct, now)
	require.NoError(t, err)
	k2, _, err := s.MintFor(ctx, "user", acct, now)
	require.NoError(t, err)
	k3, _, err := s.Mint(ctx, "user", now)
	require.NoError(t, err)
	for _, k := range []string{k1, k2} {
		sess, err := s.Lookup(ctx, k, now)
		require.NoError(t, err)
		assert.Equal(t, acct, sess.Account)
	}
	sess, err := s.Lookup(ctx, k3, now)
	require.NoError(t, err)
	assert.Empty(t, sess.Account, "a key minted without a login has no account")
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		if v, err := rdb.HGet(ctx, k, "acct").Result(); err == nil {
			assert.NotContains(t, v, "alice", "only the hash is stored")
		}
	}
}
