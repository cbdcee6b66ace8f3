package schedule

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the scheduler's Prometheus collectors, registered on the
// Registerer given in Options (none when it is nil).
type metrics struct {
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	rowsIn      *prometheus.CounterVec
	rowsOut     *prometheus.CounterVec
	removed     *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deid_job_runs_total",
			Help: "Runs of each job by outcome: success, failure, skipped (the previous run was still going), locked (another process runs it), unsupported, panic, aborted."},
			[]string{"job", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "deid_job_duration_seconds",
			Help:    "Duration of job runs, by outcome.",
			Buckets: []float64{1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400}},
			[]string{"job", "outcome"}),
		rowsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deid_job_rows_in_total",
			Help: "Rows read by job runs."}, []string{"job"}),
		rowsOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deid_job_rows_out_total",
			Help: "Rows written by job runs, summed over destinations."}, []string{"job"}),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deid_job_rows_removed_total",
			Help: "Rows removed by job runs, by reason (retention, erasure, null_time, consent, child)."}, []string{"job", "reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deid_job_bytes_written_total",
			Help: "Bytes of Parquet published by job runs."}, []string{"job"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "deid_job_last_success_timestamp_seconds",
			Help: "Unix time of each job's last successful run (0: none since the process started)."}, []string{"job"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.duration, m.rowsIn, m.rowsOut, m.removed, m.bytes, m.lastSuccess)
	}
	return m
}

// declare creates a job's series at zero, so that dashboards and alerts see
// the job before its first run.
func (m *metrics) declare(job string) {
	for _, o := range []string{OutcomeSuccess, OutcomeFailure, OutcomeSkipped, OutcomeLocked} {
		m.runs.WithLabelValues(job, o)
	}
	m.rowsIn.WithLabelValues(job)
	m.rowsOut.WithLabelValues(job)
	m.bytes.WithLabelValues(job)
	m.lastSuccess.WithLabelValues(job)
}

func randomSuffix() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
