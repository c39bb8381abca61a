package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/natsx/embedded"
)

// Each service command serves its own metrics at /metrics beside /healthz on
// --health-addr.
func TestServiceCommandsServeMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded server")
	}
	srv, err := embedded.Start(embedded.Options{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	for _, tc := range []struct {
		service string
		args    []string
		metric  string
	}{
		{"reporter", nil, "sgtune_outcome_to_front_seconds_count"},
		{"validator", nil, "# HELP sgtune_validation_seconds"},
		{"runner", []string{"--sim", "--gpus", "2", "--log-dir", t.TempDir()}, `sgtune_runner_gpus{runner="metrics-test"} 2`},
	} {
		t.Run(tc.service, func(t *testing.T) {
			addr := freeAddr(t)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan int, 1)
			var stderr bytes.Buffer
			args := append([]string{tc.service, "--nats-url", srv.ClientURL(), "--health-addr", addr, "--log-level", "error"}, tc.args...)
			env := map[string]string{"SGTUNE_RUNNER_ID": "metrics-test"}
			go func() { done <- run(ctx, args, func(k string) string { return env[k] }, io.Discard, &stderr) }()
			defer func() {
				cancel()
				if code := <-done; code != 0 {
					t.Errorf("%s exited %d: %s", tc.service, code, stderr.String())
				}
			}()
			var body string
			deadline := time.Now().Add(20 * time.Second)
			for {
				if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					body = string(b)
					if resp.StatusCode == 200 && strings.Contains(body, tc.metric) && strings.Contains(body, "go_goroutines") {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("/metrics of %s lacks %q:\n%.2000s\n%s", tc.service, tc.metric, body, stderr.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			resp, err := http.Get("http://" + addr + "/healthz")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("/healthz: %v %v", err, resp)
			}
			resp.Body.Close()
		})
	}
}
