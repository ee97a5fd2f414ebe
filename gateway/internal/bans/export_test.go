package bans

import "context"

// Forget runs the index clean-up List does for a member whose ban key it
// found gone, as if it had listed the member with score.
func Forget(ctx context.Context, s *Store, member string, score float64) error {
	return forget.Run(ctx, s.rdb, []string{s.index}, member, scoreArg(score)).Err()
}
