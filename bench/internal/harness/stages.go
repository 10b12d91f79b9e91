package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A stage of choreo's chain whose latency the services measure themselves, read from their
// Prometheus histograms before and after each fixed rate: where the chain's time goes.
type stage struct {
	name    string // as printed
	service string // whose /metrics
	metric  string // histogram, its series summed
}

// latencyStages are the chain's stages as choreo's services see them. An event's age is taken
// when its handler's transaction commits, from the event's ce_time: the harness stamps each
// AccountCreated when it publishes it, and the User Service stamps UserCreated when its handler
// runs. The chain's latency is taken when the Notification Service has recorded the email sent.
var latencyStages = []stage{
	{"publish -> User commit", "user", "choreo_event_age_seconds"},
	{"UserCreated -> Notification commit", "notification", "choreo_event_age_seconds"},
	{"publish -> email recorded sent", "notification", "choreo_chain_latency_seconds"},
}

// histogram is a cumulative Prometheus histogram: the count of observations at or below each
// bound, bounds ascending, the last +Inf.
type histogram struct {
	bounds []float64
	counts []float64
}

// readHistogram sums the series of metric in r (Prometheus text format) into one histogram.
func readHistogram(r io.Reader, metric string) (histogram, error) {
	byBound := map[float64]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prefix := metric + "_bucket{"
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		_, le, ok := strings.Cut(l, `le="`)
		if !ok {
			return histogram{}, fmt.Errorf("bucket without le: %q", l)
		}
		le, _, _ = strings.Cut(le, `"`)
		bound, err := strconv.ParseFloat(le, 64) // ParseFloat reads "+Inf"
		if err != nil {
			return histogram{}, fmt.Errorf("bucket bound in %q: %w", l, err)
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			return histogram{}, fmt.Errorf("bucket count in %q: %w", l, err)
		}
		byBound[bound] += v
	}
	if err := sc.Err(); err != nil {
		return histogram{}, err
	}
	var h histogram
	for b := range byBound {
		h.bounds = append(h.bounds, b)
	}
	slices.Sort(h.bounds)
	for _, b := range h.bounds {
		h.counts = append(h.counts, byBound[b])
	}
	return h, nil
}

// since returns the observations of h made after earlier, a reading of the same histogram.
func (h histogram) since(earlier histogram) histogram {
	out := histogram{bounds: h.bounds, counts: slices.Clone(h.counts)}
	for i, b := range h.bounds {
		if j := slices.Index(earlier.bounds, b); j >= 0 {
			out.counts[i] -= earlier.counts[j]
		}
	}
	return out
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile does: linear
// interpolation within the bucket that holds it (from 0 for the first bucket); in the +Inf
// bucket, the highest finite bound. NaN without observations.
func (h histogram) quantile(q float64) float64 {
	if h.total() <= 0 {
		return math.NaN()
	}
	rank := q * h.total()
	for i, c := range h.counts {
		if c < rank {
			continue
		}
		if math.IsInf(h.bounds[i], 1) {
			if i == 0 {
				return math.NaN()
			}
			return h.bounds[i-1]
		}
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = h.bounds[i-1], h.counts[i-1]
		}
		if c == below {
			return h.bounds[i]
		}
		return lo + (h.bounds[i]-lo)*(rank-below)/(c-below)
	}
	return math.NaN()
}

// readStages reads every latency stage's histogram from the services' /metrics (probes: service
// -> URL), each service's once.
func readStages(ctx context.Context, probes map[string]string) ([]histogram, error) {
	bodies := map[string][]byte{}
	out := make([]histogram, len(latencyStages))
	for i, st := range latencyStages {
		url, ok := probes[st.service]
		if !ok {
			return nil, fmt.Errorf("no /metrics for the %s service", st.service)
		}
		body, ok := bodies[url]
		if !ok {
			var err error
			if body, err = get(ctx, url); err != nil {
				return nil, err
			}
			bodies[url] = body
		}
		var err error
		if out[i], err = readHistogram(bytes.NewReader(body), st.metric); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", url, st.metric, err)
		}
	}
	return out, nil
}

// get returns the body of url.
func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// readStagesAfter reads the stages once the last one, the chain's latency, has observed n more
// chains than in before, or after two seconds: the Notification Service observes a chain just
// after the SMTP server accepted its email, which may be after the phase ended.
func readStagesAfter(ctx context.Context, probes map[string]string, before []histogram, n int) ([]histogram, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		after, err := readStages(ctx, probes)
		if err != nil || time.Now().After(deadline) {
			return after, err
		}
		last := len(after) - 1
		if d := after[last].since(before[last]); d.total() >= float64(n) {
			return after, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// total is how many observations h holds.
func (h histogram) total() float64 {
	if len(h.counts) == 0 {
		return 0
	}
	return h.counts[len(h.counts)-1]
}

// stageLatency is the p50 and p99 of each latency stage in one fixed-rate phase, in seconds.
type stageLatency struct {
	p50, p99 []float64
}

// stagesBetween returns what the stages observed between the readings before and after.
func stagesBetween(before, after []histogram) stageLatency {
	var s stageLatency
	for i := range after {
		d := after[i]
		if i < len(before) {
			d = after[i].since(before[i])
		}
		s.p50 = append(s.p50, d.quantile(.5))
		s.p99 = append(s.p99, d.quantile(.99))
	}
	return s
}
