package service_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/choreo-dev/choreo/pkg/service"
)

// reads is a collector that reports how many times it was collected.
type reads struct {
	desc *prometheus.Desc
	n    int
}

func (r *reads) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }
func (r *reads) Collect(ch chan<- prometheus.Metric) {
	r.n++
	ch <- prometheus.MustNewConstMetric(r.desc, prometheus.GaugeValue, float64(r.n))
}

func TestReadAtMostEvery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		interval time.Duration
		want     []float64 // the value each of three scrapes reports
	}{
		{"within the interval the last reading is served", time.Hour, []float64{1, 1, 1}},
		{"past the interval each scrape reads", 0, []float64{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &reads{desc: prometheus.NewDesc("reads", "collections", nil, nil)}
			c := service.ReadAtMostEvery(tc.interval, r)
			for i, want := range tc.want {
				if got := testutil.ToFloat64(c); got != want {
					t.Errorf("scrape %d reports %v, want %v", i+1, got, want)
				}
			}
		})
	}
}
