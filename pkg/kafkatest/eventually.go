package kafkatest

import (
	"testing"
	"time"
)

// Eventually calls fn every 20ms until it returns nil, and fails t with fn's last error if it
// has not by the end of timeout. Consumers, relays and senders act after the call that caused
// them returns, so a test waits for their effect as a condition, never for a fixed time.
func Eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
