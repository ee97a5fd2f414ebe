package traffic

import (
	"context"

	"github.com/bulwarkgw/bulwark/shared/wire"
)

// Forget runs the index clean-up List does for a member whose ban key it
// found gone, as if it had listed the member with score.
func Forget(ctx context.Context, s *Store, member string, score float64) error {
	return forget.Run(ctx, s.rdb, []string{wire.BanIndexKey(s.prefix)}, member, scoreArg(score)).Err()
}
