package server

import "sync"

// learnedAssets remembers the path patterns (traffic.Request.Pattern: a
// path with its last numeric segment as ":id") whose answers were page
// assets by their Content-Type although the path had no asset extension
// (/image/60844/productModel/200x200: /image/:id/productmodel/200x200).
// Later requests on such a pattern are counted as assets from the start:
// counting them as ordinary requests until each answer came back would
// put a page's thumbnails, all in flight at once, in its burst and its
// distinct paths. The upstream teaches it, never the client: a pattern is
// learned from an asset answer and forgotten at the first answer that was
// none. Bounded: past learnedMax patterns nothing more is learned.
type learnedAssets struct {
	mu sync.RWMutex
	m  map[string]struct{}
}

const learnedMax = 4096

func (l *learnedAssets) has(pattern string) bool {
	if pattern == "" {
		return false
	}
	l.mu.RLock()
	_, ok := l.m[pattern]
	l.mu.RUnlock()
	return ok
}

func (l *learnedAssets) learn(pattern string) {
	if pattern == "" || l.has(pattern) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]struct{})
	}
	if len(l.m) < learnedMax {
		l.m[pattern] = struct{}{}
	}
}

func (l *learnedAssets) forget(pattern string) {
	if pattern == "" || !l.has(pattern) {
		return
	}
	l.mu.Lock()
	delete(l.m, pattern)
	l.mu.Unlock()
}
