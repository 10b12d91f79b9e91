package mail

import "testing"

// isLoopback decides whether STARTTLS is skipped, so it is worth pinning down
// even though no test server can listen on a non-loopback address.
func TestIsLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LocalHost", true},
		{"localhost.", true},
		{"127.0.0.1", true},
		{"127.8.9.10", true},
		{"::1", true},
		{"mailpit", false},
		{"smtp.example.com", false},
		{"10.0.0.1", false},
		{"0.0.0.0", false},
		{"localhost.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Parallel()
			if got := isLoopback(tt.host); got != tt.want {
				t.Errorf("isLoopback(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}
