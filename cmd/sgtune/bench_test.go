package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startSim serves sglang-sim in this process on a free port until the test
// ends; extra are more launch_server flags.
func startSim(t *testing.T, extra ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	env := map[string]string{"SGTUNE_SIM_TIME_SCALE": "0.001", "SGTUNE_SIM_SEED": "1"}
	go func() {
		defer close(done)
		var out bytes.Buffer
		args := append([]string{"--model-path", "meta-llama/Llama-3.1-8B-Instruct", "--port", strconv.Itoa(port), "--log-level", "warning"}, extra...)
		_ = cmdSim(ctx, args, func(k string) string { return env[k] }, &out, &out)
	}()
	t.Cleanup(func() { cancel(); <-done })
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url + "/health_generate")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sim not healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBench_json_is_bench_serving_compatible(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulator")
	}
	url := startSim(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bench", "--url", url, "--num-prompts", "12", "--random-input-len", "64",
		"--random-output-len", "8", "--random-range-ratio", "1", "--max-concurrency", "4", "--seed", "3",
		"--warmup-requests", "2", "--json"}, func(string) string { return "" }, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, stdout.String())
	}
	for _, k := range []string{"backend", "dataset_name", "request_rate", "max_concurrency", "random_input_len",
		"random_output_len", "random_range_ratio", "duration", "completed", "total_input_tokens", "total_output_tokens",
		"request_throughput", "input_throughput", "output_throughput", "total_throughput", "concurrency",
		"mean_ttft_ms", "median_ttft_ms", "std_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "median_tpot_ms", "p99_tpot_ms",
		"mean_itl_ms", "median_itl_ms", "p95_itl_ms", "p99_itl_ms", "max_itl_ms",
		"mean_e2e_latency_ms", "median_e2e_latency_ms", "p99_e2e_latency_ms"} {
		if _, ok := got[k]; !ok {
			t.Errorf("missing %q", k)
		}
	}
	if got["completed"] != 12.0 || got["failed"] != 0.0 || got["total_output_tokens"] != 96.0 || got["total_input_tokens"] != 768.0 ||
		got["request_rate"] != "inf" || got["max_concurrency"] != 4.0 || got["backend"] != "sglang" {
		t.Fatalf("got %v", got)
	}
	if ttft := got["mean_ttft_ms"].(float64); ttft <= 0 {
		t.Fatalf("mean_ttft_ms = %v", ttft)
	}

	// The human summary, the openai backend and a prompt file.
	stdout.Reset()
	prompts := t.TempDir() + "/prompts.txt"
	if err := writeFile(prompts, "Tell me about GPUs.\nWhat is SGLang?\n"); err != nil {
		t.Fatal(err)
	}
	code = run(context.Background(), []string{"bench", "--url", url, "--backend", "openai", "--dataset-path", prompts,
		"--num-prompts", "4", "--random-output-len", "4", "--random-range-ratio", "1", "--request-rate", "50"},
		func(string) string { return "" }, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"Successful requests:", "4", "Mean TTFT (ms):", "P99 ITL (ms):", "Traffic request rate:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestBench_sends_the_servers_api_key(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulator")
	}
	url := startSim(t, "--api-key", "sk-bench")
	args := []string{"bench", "--url", url, "--num-prompts", "3", "--random-input-len", "16", "--random-output-len", "4", "--json"}
	tests := []struct {
		name         string
		givenArgs    []string
		givenEnv     map[string]string
		expectedCode int
	}{
		{name: "flag", givenArgs: []string{"--api-key", "sk-bench"}, expectedCode: 0},
		{name: "OPENAI_API_KEY, as bench_serving", givenEnv: map[string]string{"OPENAI_API_KEY": "sk-bench"}, expectedCode: 0},
		{name: "no key", expectedCode: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append(append([]string{}, args...), tt.givenArgs...),
				func(k string) string { return tt.givenEnv[k] }, &stdout, &stderr)
			if code != tt.expectedCode {
				t.Fatalf("exit %d, want %d: %s%s", code, tt.expectedCode, stdout.String(), stderr.String())
			}
			if code != 0 && !strings.Contains(stderr.String(), "401") {
				t.Fatalf("the error does not say the server refused the key: %s", stderr.String())
			}
		})
	}
}

func TestBench_usage_errors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"bench"},
		{"bench", "--url", "http://x", "--backend", "vllm"},
		{"bench", "--url", "http://x", "--request-rate", "-1"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}
