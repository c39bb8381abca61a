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

func TestBench_datasets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulator")
	}
	url := startSim(t)
	dir := t.TempDir()
	trace := dir + "/trace.jsonl"
	if err := writeFile(trace, `{"timestamp": 0, "input_length": 600, "output_length": 4, "hash_ids": [1, 2]}
{"timestamp": 20, "input_length": 700, "output_length": 4, "hash_ids": [1, 3]}
{"timestamp": 40, "input_length": 100, "output_length": 4, "hash_ids": [4]}
`); err != nil {
		t.Fatal(err)
	}
	sharegpt := dir + "/sg.json"
	if err := writeFile(sharegpt, `[{"conversations": [{"from": "human", "value": "What does a radix cache store?"}, {"from": "gpt", "value": "Prefixes of earlier prompts, to skip their prefill."}]}]`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		givenArgs  []string
		expectDone float64
	}{
		{"mooncake", []string{"--dataset-name", "mooncake", "--dataset-path", trace, "--mooncake-slowdown-factor", "0.5"}, 3},
		// One request at a time: sent all at once, the 6 prompts may land in
		// one prefill batch on a busy host, where (as in SGLang) none finds
		// the others' prefix cached yet.
		{"shared prefix", []string{"--dataset-name", "generated-shared-prefix", "--gsp-num-groups", "2", "--gsp-prompts-per-group", "3",
			"--gsp-system-prompt-len", "64", "--gsp-question-len", "8", "--gsp-output-len", "4", "--max-concurrency", "1"}, 6},
		{"sharegpt", []string{"--dataset-name", "sharegpt", "--dataset-path", sharegpt, "--sharegpt-output-len", "5"}, 1},
		{"sharegpt openai", []string{"--backend", "openai", "--dataset-name", "sharegpt", "--dataset-path", sharegpt}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"bench", "--url", url, "--num-prompts", "10", "--json", "--output-details"}, tt.givenArgs...)
			if code := run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var got map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("%v: %s", err, stdout.String())
			}
			if got["completed"] != tt.expectDone || got["failed"] != 0.0 {
				t.Fatalf("completed %v failed %v", got["completed"], got["failed"])
			}
			lens, _ := got["input_lens"].([]any)
			if len(lens) != int(tt.expectDone) || lens[0].(float64) <= 0 {
				t.Fatalf("input_lens %v", got["input_lens"])
			}
			// The shared system prompts (and the trace's shared blocks) are
			// served from the simulator's radix cache, as it reports them.
			if hit, ok := got["cache_hit_rate"].(float64); tt.name == "shared prefix" && (!ok || hit <= 0.2 || hit > 1) {
				t.Fatalf("cache_hit_rate %v with 3 prompts sharing each 64-token system prompt", got["cache_hit_rate"])
			}
		})
	}
	// Bad input: a clear usage error naming the file and line, nothing sent.
	bad := dir + "/bad.jsonl"
	if err := writeFile(bad, "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1}\n{\"timestamp\": 5}\n"); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bench", "--url", url, "--dataset-name", "mooncake", "--dataset-path", bad},
		func(string) string { return "" }, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "bad.jsonl: line 2: input_length: missing") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, args := range [][]string{
		{"--dataset-name", "lmsys"},
		{"--dataset-name", "mooncake"},
		{"--dataset-name", "generated-shared-prefix", "--gsp-prompts-per-group", "0"},
		{"--dataset-name", "mooncake", "--dataset-path", trace, "--request-rate", "4"},
	} {
		stderr.Reset()
		if code := run(context.Background(), append([]string{"bench", "--url", url}, args...), func(string) string { return "" }, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, stderr.String())
		}
	}
}

func TestBench_capacity(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulator")
	}
	url := startSim(t)
	base := []string{"bench", "--url", url, "--num-prompts", "8", "--random-input-len", "64", "--random-output-len", "8",
		"--random-range-ratio", "1", "--json", "--capacity-requests-per-level", "16"}
	tests := []struct {
		name          string
		givenArgs     []string
		expectedKey   string
		expectedValue float64
	}{
		// Every level meets a loose bound: the capacity is the bound itself.
		{"concurrency, everything meets it", []string{"--capacity", "concurrency", "--max-concurrency", "16", "--slo-p99-ttft-ms", "1e9"}, "capacity_concurrency", 16},
		{"request rate, everything meets it", []string{"--capacity", "request-rate", "--request-rate", "50", "--slo-p99-e2e-latency-ms", "1e9"}, "capacity_request_rate", 50},
		// Nothing meets an impossible bound: capacity 0 and the reason.
		{"concurrency, nothing meets it", []string{"--capacity", "concurrency", "--max-concurrency", "16", "--slo-p99-ttft-ms", "0.0001"}, "capacity_concurrency", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), append(append([]string{}, base...), tt.givenArgs...), func(string) string { return "" }, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var got map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("not one JSON object: %v\n%s", err, stdout.String())
			}
			if got[tt.expectedKey] != tt.expectedValue {
				t.Fatalf("%s = %v, want %v (%s)", tt.expectedKey, got[tt.expectedKey], tt.expectedValue, stdout.String())
			}
			pts, _ := got["load_points"].([]any)
			if len(pts) == 0 || len(pts) > 8 {
				t.Fatalf("load_points %v", got["load_points"])
			}
			for _, p := range pts {
				p := p.(map[string]any)
				if (p["max_concurrency"] == nil) == (p["request_rate"] == nil) || p["mean_ttft_ms"] == nil || p["p99_ttft_ms"] == nil || p["slo_met"] == nil {
					t.Fatalf("load point %v: want max_concurrency or request_rate and bench_serving's metrics", p)
				}
			}
			if tt.expectedValue == 0 && !strings.Contains(got["note"].(string), "p99_ttft_ms") {
				t.Fatalf("note %v", got["note"])
			}
		})
	}
	var stdout, stderr bytes.Buffer
	summary := []string{"bench", "--url", url, "--num-prompts", "8", "--random-input-len", "64", "--random-output-len", "8",
		"--capacity", "concurrency", "--max-concurrency", "4", "--slo-p99-ttft-ms", "1e9", "--capacity-requests-per-level", "8"}
	if code := run(context.Background(), summary, func(string) string { return "" }, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "Capacity (concurrency):") || !strings.Contains(stdout.String(), "Load Levels") {
		t.Fatalf("summary (exit %d):\n%s%s", code, stdout.String(), stderr.String())
	}
}

func TestBench_capacity_usage_errors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--capacity", "concurrency", "--slo-p99-ttft-ms", "500"},
		{"--capacity", "request-rate", "--slo-p99-ttft-ms", "500"},
		{"--capacity", "qps", "--max-concurrency", "8", "--slo-p99-ttft-ms", "500"},
		{"--capacity", "concurrency", "--max-concurrency", "8"},
		{"--capacity", "concurrency", "--max-concurrency", "8", "--slo-p99-tpot-ms", "-1"},
		{"--capacity", "concurrency", "--max-concurrency", "8", "--request-rate", "4", "--slo-p99-ttft-ms", "500"},
		{"--capacity", "request-rate", "--request-rate", "0.5", "--slo-p99-ttft-ms", "500"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"bench", "--url", "http://127.0.0.1:1"}, args...), func(string) string { return "" }, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}
