package schedule

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// JobStatus is one job as /jobs shows it.
type JobStatus struct {
	Name         string    `json:"name"`
	What         string    `json:"what"`
	Destinations []string  `json:"destinations,omitempty"`
	Schedule     string    `json:"schedule"`
	Running      bool      `json:"running"`
	RunningSince time.Time `json:"running_since,omitzero"`
	Next         time.Time `json:"next,omitzero"`
	Last         *Run      `json:"last,omitempty"`
	LastSuccess  *Run      `json:"last_success,omitempty"`
}

// Jobs returns every job's status, in policy order.
func (s *Scheduler) Jobs() []JobStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]JobStatus, 0, len(s.order))
	for _, name := range s.order {
		st := s.jobs[name]
		js := JobStatus{Name: name, What: st.decl.What, Destinations: st.decl.Destinations, Schedule: st.decl.Schedule,
			Running: st.running, Last: st.last, LastSuccess: st.lastOK}
		if st.running {
			js.RunningSince = st.start.UTC()
		}
		if s.started && !s.stopping {
			js.Next = s.cron.Entry(st.entry).Next.UTC()
		}
		out = append(out, js)
	}
	return out
}

// Handler serves /healthz (the process is alive), /readyz (the scheduler
// runs and is not stopping), /metrics (Prometheus, from gatherer) and /jobs
// (JSON: each job's schedule, next run, last run and the locations of its
// last reports).
func (s *Scheduler) Handler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.Ready() {
			http.Error(w, "not ready: starting or stopping", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /jobs", func(w http.ResponseWriter, _ *http.Request) {
		b, err := json.MarshalIndent(map[string]any{"jobs": s.Jobs()}, "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	})
	return mux
}
