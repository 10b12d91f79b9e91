package consumer

import "sync"

// metrics counts outcomes per handler.
type metrics struct {
	mu sync.Mutex
	m  map[string]*Stats
}

func newMetrics() *metrics { return &metrics{m: make(map[string]*Stats)} }

func (m *metrics) add(handler string, f func(*Stats)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.m[handler]
	if s == nil {
		s = &Stats{}
		m.m[handler] = s
	}
	f(s)
}

func (m *metrics) total() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	var t Stats
	for _, s := range m.m {
		t.Handled += s.Handled
		t.Duplicates += s.Duplicates
		t.Parked += s.Parked
		t.Ignored += s.Ignored
		t.Retried += s.Retried
	}
	return t
}

func (m *metrics) byHandler() map[string]Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Stats, len(m.m))
	for h, s := range m.m {
		out[h] = *s
	}
	return out
}
