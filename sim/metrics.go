package sim

import (
	"fmt"
	"math"
	"net/http"
)

// handleMetrics serves SGLang's Prometheus gauges (with --enable-metrics).
func (s *server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	if !s.sa.bool("enable_metrics") {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not Found"})
		return
	}
	var running, queued, kv, prompt, cached int64
	var tput float64
	for _, rep := range s.reps() {
		prompt += rep.promptTokens.Load()
		cached += rep.cachedTokens.Load()
		running += rep.running.Load()
		queued += rep.queued.Load()
		kv += rep.kvUsed.Load()
		tput += math.Float64frombits(rep.genTput.Load())
	}
	usage := 0.0
	if s.plan != nil {
		usage = float64(kv) / float64(max(s.plan.MaxTotalTokens*s.plan.Replicas, 1))
	}
	hitRate := 0.0
	if prompt > 0 {
		hitRate = float64(cached) / float64(prompt)
	}
	name := s.servedName()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = fmt.Fprintf(w, "# HELP sglang:num_running_reqs The number of running requests.\n# TYPE sglang:num_running_reqs gauge\nsglang:num_running_reqs{model_name=%q} %d\n", name, running)
	_, _ = fmt.Fprintf(w, "# HELP sglang:num_queue_reqs The number of requests in the waiting queue.\n# TYPE sglang:num_queue_reqs gauge\nsglang:num_queue_reqs{model_name=%q} %d\n", name, queued)
	_, _ = fmt.Fprintf(w, "# HELP sglang:token_usage The token usage.\n# TYPE sglang:token_usage gauge\nsglang:token_usage{model_name=%q} %g\n", name, usage)
	_, _ = fmt.Fprintf(w, "# HELP sglang:gen_throughput The generation throughput (token/s).\n# TYPE sglang:gen_throughput gauge\nsglang:gen_throughput{model_name=%q} %g\n", name, tput)
	_, _ = fmt.Fprintf(w, "# HELP sglang:cache_hit_rate The prefix cache hit rate.\n# TYPE sglang:cache_hit_rate gauge\nsglang:cache_hit_rate{model_name=%q} %g\n", name, hitRate)
	_, _ = fmt.Fprintf(w, "# HELP sglang:num_requests_total Number of requests processed.\n# TYPE sglang:num_requests_total counter\nsglang:num_requests_total{model_name=%q} %d\n", name, s.nreq.Load())
}
