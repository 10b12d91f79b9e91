package consumer

import (
	"math/rand/v2"
	"time"
)

// RetryPolicy bounds how a transient handler failure is retried before the record is parked.
// Retries happen in the partition's own worker: other partitions go on, and the records after
// the failing one wait, so per-key order holds.
type RetryPolicy struct {
	// MaxAttempts counts the first try too; 1 parks at the first failure.
	MaxAttempts int
	// InitialBackoff is the wait after the first failure; it doubles per attempt.
	InitialBackoff time.Duration
	// MaxBackoff caps one wait.
	MaxBackoff time.Duration
	// MaxElapsed caps the time from the first failure: a record is parked when the next attempt
	// would start after it.
	MaxElapsed time.Duration
}

// DefaultRetryPolicy is the policy of a runner without the Retry option: 5 attempts, 100ms
// doubling to at most 5s, within 30s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second, MaxElapsed: 30 * time.Second}
}

func (p RetryPolicy) normalized() RetryPolicy {
	d := DefaultRetryPolicy()
	if p.MaxAttempts < 1 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = d.InitialBackoff
	}
	if p.MaxBackoff < p.InitialBackoff {
		p.MaxBackoff = max(d.MaxBackoff, p.InitialBackoff)
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = d.MaxElapsed
	}
	return p
}

// backoff returns the wait after the attempts-th failure: exponential, capped, with jitter in
// [d/2, d] so that many records failing together do not retry in lockstep.
func (p RetryPolicy) backoff(attempts int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < attempts && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}
