//go:build unix

package connlimit

import "syscall"

// RaiseFileLimit raises the process's soft limit on open files
// (RLIMIT_NOFILE) to its hard limit and returns both as they are after.
// (Go already does this at start on most systems; doing it here makes the
// limit the gateway works with explicit, and logged.)
func RaiseFileLimit() (soft, hard uint64, err error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, err
	}
	if r.Cur < r.Max {
		want := r
		want.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			r = want
		} else {
			return uint64(r.Cur), uint64(r.Max), err
		}
	}
	return uint64(r.Cur), uint64(r.Max), nil
}
