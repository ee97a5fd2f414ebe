//go:build !unix

package connlimit

import "errors"

// RaiseFileLimit reports that this system has no RLIMIT_NOFILE.
func RaiseFileLimit() (soft, hard uint64, err error) {
	return 0, 0, errors.ErrUnsupported
}
