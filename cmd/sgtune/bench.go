package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/runner"
)

// rateFlag is --request-rate: a number of requests per second or "inf"
// (send every request at once), as in bench_serving. 0 stands for inf.
type rateFlag float64

func (r *rateFlag) String() string {
	if *r <= 0 {
		return "inf"
	}
	return strconv.FormatFloat(float64(*r), 'g', -1, 64)
}

func (r *rateFlag) Set(s string) error {
	if strings.EqualFold(s, "inf") {
		*r = 0
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("want a positive number or inf")
	}
	*r = rateFlag(f)
	return nil
}

// cmdBench runs the runner's load generator against a running SGLang (or
// SGLang-compatible) server and prints bench_serving's metrics: a summary,
// or with --json one bench_serving-compatible JSON object.
func cmdBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	url := fs.String("url", "", "base URL of the server, e.g. http://127.0.0.1:30000 (required)")
	backend := fs.String("backend", "sglang", "sglang (POST /generate) or openai (POST /v1/completions)")
	numPrompts := fs.Int("num-prompts", 1000, "measured requests")
	inLen := fs.Int("random-input-len", 1024, "input tokens of random-ids prompts")
	outLen := fs.Int("random-output-len", 1024, "output tokens per request (max new tokens)")
	ratio := fs.Float64("random-range-ratio", 0, "lengths drawn uniformly from [max(int(len*ratio),1), len]; 1 = fixed")
	maxConc := fs.Int("max-concurrency", 0, "requests in flight at most (0: no limit)")
	var rate rateFlag
	fs.Var(&rate, "request-rate", "Poisson arrival rate in requests/s, or inf (all at once) (default inf)")
	seed := fs.Int64("seed", 1, "seed of prompts, lengths and arrivals")
	datasetName := fs.String("dataset-name", "", "random-ids (default), prompts, mooncake, generated-shared-prefix or sharegpt")
	datasetPath := fs.String("dataset-path", "", "the dataset's file: a mooncake JSONL trace, a ShareGPT JSON file, or (without --dataset-name) a prompt file, one prompt a line")
	slowdown := fs.Float64("mooncake-slowdown-factor", 1, "stretch a mooncake trace's arrival times by this factor")
	gspGroups := fs.Int("gsp-num-groups", 64, "generated-shared-prefix: groups")
	gspPerGroup := fs.Int("gsp-prompts-per-group", 16, "generated-shared-prefix: prompts per group")
	gspSystem := fs.Int("gsp-system-prompt-len", 2048, "generated-shared-prefix: tokens of each group's shared system prompt")
	gspQuestion := fs.Int("gsp-question-len", 128, "generated-shared-prefix: tokens of each prompt's own question")
	gspOutput := fs.Int("gsp-output-len", 256, "generated-shared-prefix: output tokens per request")
	sharegptOut := fs.Int("sharegpt-output-len", 0, "sharegpt: output tokens per request (0: the length of each conversation's reply)")
	details := fs.Bool("output-details", false, "with --json, add per-request input_lens and output_lens (as the server counted them)")
	warmup := fs.Int("warmup-requests", 1, "warm-up requests, not measured")
	model := fs.String("model", "", "model name sent to /v1/completions (default: the server's)")
	disableEOS := fs.Bool("disable-ignore-eos", false, "let requests stop at EOS (default: ignore_eos, exact output lengths)")
	timeout := fs.Duration("timeout", 0, "bound on the whole benchmark (0: none)")
	idle := fs.Duration("idle-timeout", 2*time.Minute, "fail the run when a stream sends nothing this long")
	asJSON := fs.Bool("json", false, "print one bench_serving-compatible JSON object")
	apiKey := fs.String("api-key", getenv("OPENAI_API_KEY"), "the server's --api-key, sent as a bearer token (default $OPENAI_API_KEY, as bench_serving)")
	capSearch := fs.String("capacity", "", "search the largest load meeting the --slo-* bounds: concurrency (up to --max-concurrency) or request-rate (up to --request-rate)")
	sloTTFT := fs.Float64("slo-p99-ttft-ms", 0, "capacity SLO: p99 time to first token, ms")
	sloTPOT := fs.Float64("slo-p99-tpot-ms", 0, "capacity SLO: p99 time per output token, ms")
	sloITL := fs.Float64("slo-p99-itl-ms", 0, "capacity SLO: p99 inter-token latency, ms")
	sloE2E := fs.Float64("slo-p99-e2e-latency-ms", 0, "capacity SLO: p99 end-to-end latency, ms")
	capLevels := fs.Int("capacity-max-levels", 0, "capacity: levels measured at most, repeats included (default 8)")
	capRequests := fs.Int("capacity-requests-per-level", 0, "capacity: measured requests per level (default: enough for the SLO's p99, see docs/benchmarks.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *url == "" {
		return usageError("--url is required")
	}
	if *backend != "sglang" && *backend != "openai" {
		return usageError("--backend %q: want sglang or openai", *backend)
	}
	w := events.Workload{
		Backend: *backend, Dataset: *datasetName, NumPrompts: *numPrompts, RandomInputLen: *inLen,
		RandomOutputLen: *outLen, RandomRangeRatio: *ratio, MaxConcurrency: *maxConc, RequestRate: float64(rate),
		WarmupRequests: *warmup, Seed: *seed, IgnoreEOS: !*disableEOS, VocabSize: study.Default().Workload.VocabSize,
		DatasetPath: *datasetPath, MooncakeSlowdownFactor: *slowdown,
		GSPNumGroups: *gspGroups, GSPPromptsPerGroup: *gspPerGroup, GSPSystemPromptLen: *gspSystem,
		GSPQuestionLen: *gspQuestion, GSPOutputLen: *gspOutput, SharegptOutputLen: *sharegptOut,
	}
	switch {
	case w.Dataset == "" && *datasetPath != "":
		// sgtune bench's own prompt file (before --dataset-name existed).
		w.Dataset, w.PromptFile, w.DatasetPath = study.DatasetPrompts, *datasetPath, ""
	case w.Dataset == "":
		w.Dataset = study.DatasetRandomIDs
	case w.Dataset == study.DatasetPrompts:
		w.PromptFile, w.DatasetPath = *datasetPath, ""
	}
	if *capSearch != "" {
		c, err := capacityFlags(*capSearch, *maxConc, rate, map[string]float64{
			"p99_ttft_ms": *sloTTFT, "p99_tpot_ms": *sloTPOT, "p99_itl_ms": *sloITL, "p99_e2e_latency_ms": *sloE2E})
		if err != nil {
			return err
		}
		c.MaxLevels, c.RequestsPerLevel = *capLevels, *capRequests
		w.Capacity = c
		if c.Search == events.SearchConcurrency {
			w.MaxConcurrency = 0 // the search sets each level's
		} else {
			w.RequestRate = 0
		}
	}
	if w.Dataset == study.DatasetMooncake && rate > 0 && w.Capacity == nil {
		return usageError("--request-rate: a mooncake trace is replayed at its own arrival times")
	}
	if err := study.ValidateWorkload("workload", w); err != nil {
		return usageError("%s", benchFlagName(err.Error()))
	}
	res, err := runner.Bench(ctx, runner.BenchOptions{
		BaseURL: *url, Workload: w, Model: *model, Timeout: *timeout, IdleTimeout: *idle, APIKey: *apiKey,
	})
	if res == nil {
		if errors.Is(err, runner.ErrBadWorkload) {
			return usageError("%v", err)
		}
		return err
	}
	out := benchJSON(w, rate, res.Metrics)
	if *details {
		out["input_lens"], out["output_lens"] = res.InputLens, res.OutputLens
	}
	if res.LoadPoints != nil {
		out["load_points"] = res.LoadPoints
	}
	if res.Note != "" {
		out["note"] = res.Note
	}
	if *asJSON {
		b, merr := json.Marshal(out)
		if merr != nil {
			return merr
		}
		fmt.Fprintln(stdout, string(b))
	} else {
		printBenchSummary(stdout, out)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// capacityFlags builds the capacity search of --capacity: its bound is
// --max-concurrency (concurrency) or --request-rate (request-rate), its SLO
// the --slo-p99-* flags that are set.
func capacityFlags(search string, maxConc int, rate rateFlag, bounds map[string]float64) (*events.CapacitySearch, error) {
	c := &events.CapacitySearch{SLO: map[string]float64{}}
	for k, v := range bounds {
		switch {
		case v < 0:
			return nil, usageError("--slo-%s: must be positive, got %v", strings.ReplaceAll(k, "_", "-"), v)
		case v > 0:
			c.SLO[k] = v
		}
	}
	if len(c.SLO) == 0 {
		return nil, usageError("--capacity needs at least one bound: --slo-p99-ttft-ms, --slo-p99-tpot-ms, --slo-p99-itl-ms or --slo-p99-e2e-latency-ms")
	}
	switch search {
	case "concurrency":
		if maxConc < 1 {
			return nil, usageError("--capacity concurrency searches up to --max-concurrency: set it (at least 1)")
		}
		if rate > 0 {
			return nil, usageError("--capacity concurrency runs closed loops: leave --request-rate at inf")
		}
		c.Search, c.Max = events.SearchConcurrency, float64(maxConc)
	case "request-rate", "request_rate":
		if rate <= 0 {
			return nil, usageError("--capacity request-rate searches up to --request-rate: set it (requests/s)")
		}
		if rate < 1 {
			return nil, usageError("--request-rate: the capacity search's bound must be at least 1, got %v", float64(rate))
		}
		c.Search, c.Max = events.SearchRequestRate, float64(rate)
	default:
		return nil, usageError("--capacity %q: want concurrency or request-rate", search)
	}
	return c, nil
}

// benchFlagName turns a workload error's spec key ("workload.gsp_num_groups")
// into the bench flag a user typed (--gsp-num-groups).
func benchFlagName(msg string) string {
	rest, ok := strings.CutPrefix(msg, "workload.")
	if !ok {
		return msg
	}
	key, tail, _ := strings.Cut(rest, ":")
	if key == "prompt_file" {
		key = "dataset_path"
	}
	if key == "dataset" {
		key = "dataset_name"
	}
	return "--" + strings.ReplaceAll(key, "_", "-") + ":" + tail
}

// benchJSON lays metrics out as bench_serving's JSONL record: its
// configuration fields, then every metric under bench_serving's name and unit
// (latencies in ms, throughputs per second). request_rate is "inf" for an
// unbounded rate (bench_serving's Python writes the non-JSON Infinity).
func benchJSON(w events.Workload, rate rateFlag, m map[string]float64) map[string]any {
	out := map[string]any{
		"backend":            w.Backend,
		"dataset_name":       w.Dataset,
		"random_input_len":   w.RandomInputLen,
		"random_output_len":  w.RandomOutputLen,
		"random_range_ratio": w.RandomRangeRatio,
		"num_prompts":        w.NumPrompts,
		"seed":               w.Seed,
	}
	if rate <= 0 {
		out["request_rate"] = "inf"
	} else {
		out["request_rate"] = float64(rate)
	}
	if w.MaxConcurrency > 0 {
		out["max_concurrency"] = w.MaxConcurrency
	} else {
		out["max_concurrency"] = nil
	}
	for k, v := range m {
		switch k {
		case "completed", "failed", "total_input_tokens", "total_output_tokens":
			out[k] = int64(v)
		default:
			out[k] = v
		}
	}
	return out
}

func printBenchSummary(w io.Writer, m map[string]any) {
	line := func(name, key string) {
		if v, ok := m[key]; ok {
			fmt.Fprintf(w, "%-40s %v\n", name+":", format(v))
		}
	}
	fmt.Fprintln(w, "============ Serving Benchmark Result ============")
	line("Backend", "backend")
	line("Traffic request rate", "request_rate")
	line("Max request concurrency", "max_concurrency")
	line("Successful requests", "completed")
	line("Failed requests", "failed")
	line("Benchmark duration (s)", "duration")
	line("Total input tokens", "total_input_tokens")
	line("Total generated tokens", "total_output_tokens")
	line("Request throughput (req/s)", "request_throughput")
	line("Input token throughput (tok/s)", "input_throughput")
	line("Output token throughput (tok/s)", "output_throughput")
	line("Total token throughput (tok/s)", "total_throughput")
	line("Concurrency", "concurrency")
	line("Goodput (req/s)", "goodput")
	for _, group := range []struct{ title, key string }{
		{"End-to-End Latency", "e2e_latency"}, {"Time to First Token", "ttft"},
		{"Time per Output Token (excl. 1st token)", "tpot"}, {"Inter-Token Latency", "itl"},
	} {
		fmt.Fprintf(w, "%s\n", center(group.title))
		var keys []string
		for k := range m {
			if strings.HasSuffix(k, "_"+group.key+"_ms") {
				keys = append(keys, k)
			}
		}
		sort.Slice(keys, func(i, j int) bool { return statOrder(keys[i]) < statOrder(keys[j]) })
		for _, k := range keys {
			stat := strings.TrimSuffix(k, "_"+group.key+"_ms")
			line(strings.ToUpper(stat[:1])+stat[1:]+" "+strings.ToUpper(group.key)+" (ms)", k)
		}
	}
	if pts, ok := m["load_points"].([]events.LoadPoint); ok {
		fmt.Fprintf(w, "%s\n", center("Load Levels"))
		fmt.Fprintf(w, "%-14s %12s %12s %12s %10s  %s\n", "level", "P99 TTFT ms", "P99 TPOT ms", "out tok/s", "SLO met", "")
		for _, p := range pts {
			level := fmt.Sprintf("conc %d", p.MaxConcurrency)
			if p.RequestRate > 0 {
				level = fmt.Sprintf("rate %g/s", p.RequestRate)
			}
			met := "-"
			if p.SLOMet != nil {
				met = strconv.FormatBool(*p.SLOMet)
			}
			note := p.Error
			if p.Repeats > 1 {
				note = strings.TrimSpace(fmt.Sprintf("measured %d times %s", p.Repeats, note))
			}
			fmt.Fprintf(w, "%-14s %12.2f %12.2f %12.0f %10s  %s\n", level, p.Metrics["p99_ttft_ms"], p.Metrics["p99_tpot_ms"],
				p.Metrics["output_throughput"], met, note)
		}
		line("Capacity (concurrency)", "capacity_concurrency")
		line("Capacity (request rate, req/s)", "capacity_request_rate")
		line("Output throughput at capacity (tok/s)", "capacity_output_throughput")
		line("Goodput at capacity (req/s)", "capacity_goodput")
		line("Note", "note")
	}
	fmt.Fprintln(w, strings.Repeat("=", 50))
}

func statOrder(k string) int {
	for i, p := range []string{"mean_", "median_", "std_", "p90_", "p95_", "p99_", "max_"} {
		if strings.HasPrefix(k, p) {
			return i
		}
	}
	return 99
}

func center(title string) string {
	pad := max(50-len(title)-2, 0)
	return strings.Repeat("-", pad/2) + " " + title + " " + strings.Repeat("-", pad-pad/2)
}

func format(v any) string {
	switch x := v.(type) {
	case nil:
		return "not set"
	case float64:
		return strconv.FormatFloat(x, 'f', 2, 64)
	default:
		return fmt.Sprint(x)
	}
}
