package harness

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

type header struct {
	date               time.Time
	broker             string
	brokerRSS          int64
	loadStart, loadEnd string
}

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func perSec(v float64) string {
	if v <= 0 {
		return "-"
	}
	if v >= 1000 {
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

func mib(b int64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }

// printTable writes the run's one table, then choreo's ratio to each peer.
func printTable(cfg Config, rows []Row, h header) {
	w := cfg.Out
	fmt.Fprintf(w, "\nchoreo bench, %s, %s\n", h.date.Format("2006-01-02 15:04 MST"), machine())
	fmt.Fprintf(w, "broker: %s; burst %d chains; fixed rates for %s each; %d partitions; load average %s at the start, %s at the end\n\n",
		h.broker, cfg.N, cfg.Duration, cfg.Partitions, h.loadStart, h.loadEnd)
	cols := []string{"system", "burst chains/s", "emails/s", "hop 1/s", "hop 2/s"}
	for _, r := range cfg.Rates {
		cols = append(cols, fmt.Sprintf("%d/s p50/p99/max ms", r))
	}
	cols = append(cols, "peak RSS MiB")
	table := [][]string{cols}
	for _, r := range rows {
		cells := []string{label(r.System)}
		if r.Err != nil && r.Burst.n == 0 {
			msg := r.Err.Error()
			if errors.Is(r.Err, errSkipped) {
				msg = strings.TrimPrefix(msg, errSkipped.Error()+": ")
			}
			msg, _, _ = strings.Cut(msg, "\n")
			table = append(table, []string{label(r.System), "not measured: " + msg})
			continue
		}
		cells = append(cells, perSec(r.Burst.chainsPerSec()), perSec(r.Burst.emailsPerSec()),
			perSec(r.Stages["hop1"]), perSec(r.Stages["hop2"]))
		if !r.Burst.complete() {
			cells[1] = fmt.Sprintf("%d/%d done", r.Burst.got, r.Burst.n)
		}
		for i := range cfg.Rates {
			if i >= len(r.Steady) {
				cells = append(cells, "-")
				continue
			}
			s := r.Steady[i]
			c := ms(s.percentile(.5)) + " / " + ms(s.percentile(.99)) + " / " + ms(s.percentile(1))
			if !s.complete() {
				c = fmt.Sprintf("%d/%d done", s.got, s.n)
			}
			cells = append(cells, c)
		}
		var rss []string
		for _, p := range r.RSS {
			if len(r.RSS) == 1 {
				rss = append(rss, mib(p.bytes))
			} else {
				rss = append(rss, p.name+" "+mib(p.bytes))
			}
		}
		cells = append(cells, strings.Join(rss, ", "))
		table = append(table, cells)
	}
	writeMarkdown(w, table)
	if h.brokerRSS > 0 {
		fmt.Fprintf(w, "\nbroker peak RSS %s MiB (all systems' records)\n", mib(h.brokerRSS))
	}
	fmt.Fprintln(w, "\nchoreo / peer (throughput: higher is better; latency: lower is better):")
	for _, c := range rows {
		if !isChoreo(c.System) || c.Err != nil {
			continue
		}
		for _, p := range rows {
			if isChoreo(p.System) || p.Err != nil {
				continue
			}
			parts := []string{"burst " + ratio(c.Burst.chainsPerSec(), p.Burst.chainsPerSec())}
			for i, rate := range cfg.Rates {
				if i < len(c.Steady) && i < len(p.Steady) {
					parts = append(parts, fmt.Sprintf("p50 at %d/s %s, p99 %s", rate,
						ratio(c.Steady[i].percentile(.5).Seconds(), p.Steady[i].percentile(.5).Seconds()),
						ratio(c.Steady[i].percentile(.99).Seconds(), p.Steady[i].percentile(.99).Seconds())))
				}
			}
			fmt.Fprintf(w, "  %s vs %s: %s\n", label(c.System), label(p.System), strings.Join(parts, "; "))
		}
	}
	printStages(w, cfg, rows)
}

// printStages writes, for each choreo system and fixed rate, the p50 and p99 of each of
// latencyStages as the services' histograms estimate them.
func printStages(w io.Writer, cfg Config, rows []Row) {
	table := [][]string{{"stage p50 / p99 ms", "rate"}}
	for _, st := range latencyStages {
		table[0] = append(table[0], st.name)
	}
	for _, r := range rows {
		for i, sl := range r.StageLatency {
			if sl == nil || i >= len(cfg.Rates) {
				continue
			}
			cells := []string{label(r.System), fmt.Sprintf("%d/s", cfg.Rates[i])}
			for j := range sl.p50 {
				cells = append(cells, seconds(sl.p50[j])+" / "+seconds(sl.p99[j]))
			}
			table = append(table, cells)
		}
	}
	if len(table) == 1 {
		return
	}
	fmt.Fprintln(w, "\nWhere choreo's time goes at the fixed rates, from its services' own histograms (an event's age when")
	fmt.Fprintln(w, "its handler's transaction commits; the chain's when the email is recorded sent), estimated as")
	fmt.Fprintln(w, "histogram_quantile does within buckets of 1, 2.5, 5, 10, 25, 50, 100 ms...:")
	fmt.Fprintln(w)
	writeMarkdown(w, table)
}

// seconds prints a stage's estimate, in seconds, as milliseconds.
func seconds(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return ms(time.Duration(v * float64(time.Second)))
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	r := a / b
	switch {
	case r < 0.1:
		return fmt.Sprintf("%.3fx", r)
	case r >= 100:
		return fmt.Sprintf("%.0fx", r)
	case r >= 10:
		return fmt.Sprintf("%.1fx", r)
	}
	return fmt.Sprintf("%.2fx", r)
}

// writeMarkdown writes rows as a Markdown table, padded so that it reads in a terminal too.
func writeMarkdown(w io.Writer, rows [][]string) {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len(c))
		}
	}
	line := func(r []string) {
		var b strings.Builder
		b.WriteString("|")
		for i := range width {
			c := ""
			if i < len(r) {
				c = r[i]
			}
			fmt.Fprintf(&b, " %-*s |", width[i], c)
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	sep := make([]string, len(width))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range rows[1:] {
		line(r)
	}
}
