package service

import "runtime/debug"

// DefaultMemoryLimit is the soft memory limit of Go's runtime (runtime/debug.SetMemoryLimit)
// that Main sets when GOMEMLIMIT is unset: 32 MiB. It covers what Go manages (heap, stacks,
// runtime metadata), not the binary's own pages (about 30 MiB of a service's RSS) nor SQLite's
// page cache. Below the limit the collector runs as GOGC says; near it, it runs more often
// instead of letting the heap double, which keeps a service under 64 MiB RSS through a burst. A
// service whose live heap is larger than the limit would spend CPU on collection: set GOMEMLIMIT
// (e.g. GOMEMLIMIT=128MiB, or GOMEMLIMIT=off for none) and Go's runtime applies that instead.
const DefaultMemoryLimit = 32 << 20

// applyMemoryLimit sets DefaultMemoryLimit unless GOMEMLIMIT is set (the runtime has applied it
// at start, "off" included). It returns how to restore the limit it replaced, for callers of
// Main that are not a whole process (tests).
func applyMemoryLimit(getenv func(string) string) (restore func()) {
	if getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	prev := debug.SetMemoryLimit(DefaultMemoryLimit)
	return func() { debug.SetMemoryLimit(prev) }
}
