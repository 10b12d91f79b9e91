package consumer

import (
	"testing"
	"time"
)

// TestRetryPolicyBackoff computes the waits a policy gives: doubling from InitialBackoff, capped
// at MaxBackoff, each jittered within [d/2, d].
func TestRetryPolicyBackoff(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{MaxAttempts: 10, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxElapsed: time.Minute}
	tests := []struct {
		attempts int
		want     time.Duration // before jitter
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second}, // 1.6s capped
		{9, time.Second},
	}
	for _, tt := range tests {
		lo, hi := tt.want, time.Duration(0)
		for range 200 {
			d := p.backoff(tt.attempts)
			if d < tt.want/2 || d > tt.want {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", tt.attempts, d, tt.want/2, tt.want)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		// 200 draws from [d/2, d] all in the same quarter would mean no jitter.
		if hi-lo < tt.want/4 {
			t.Errorf("backoff(%d) drew only from [%s, %s] in 200 tries: no jitter", tt.attempts, lo, hi)
		}
	}
}

func TestRetryPolicyNormalized(t *testing.T) {
	t.Parallel()
	d := DefaultRetryPolicy()
	if got := (RetryPolicy{}).normalized(); got != d {
		t.Errorf("zero policy normalized to %+v, want the default %+v", got, d)
	}
	// An initial backoff above the default cap raises the cap, so the first wait is kept.
	got := RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Second}.normalized()
	if got.MaxAttempts != 3 || got.InitialBackoff != 10*time.Second || got.MaxBackoff != 10*time.Second || got.MaxElapsed != d.MaxElapsed {
		t.Errorf("normalized = %+v", got)
	}
	if b := got.backoff(3); b < 5*time.Second || b > 10*time.Second {
		t.Errorf("backoff(3) = %s, want within [5s, 10s]", b)
	}
}
