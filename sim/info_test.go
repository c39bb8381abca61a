package sim

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/study"
)

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return out
}

// TestRun_serverInfoHasEveryTunedParameter: the runner records the values
// SGLang really used from /get_server_info, so every parameter of the
// shared registry appears there, with its effective value after SGLang's
// adjustments, next to version; /get_model_info names the model.
func TestRun_serverInfoHasEveryTunedParameter(t *testing.T) {
	ts := startRun(t, nil, "--prefill-attention-backend", "flashinfer", "--decode-attention-backend", "flashinfer",
		"--schedule-policy", "lpm", "--disable-radix-cache", "--chunked-prefill-size", "4096")
	ts.waitHealthy(t, 5*time.Second)
	info := getJSON(t, ts.url+"/get_server_info")
	for _, d := range study.Registry() {
		if _, ok := info[d.Name]; !ok {
			t.Errorf("server_info lacks %s", d.Name)
		}
	}
	want := map[string]any{
		"version": Version,
		// equal prefill/decode backends fold into attention_backend
		"attention_backend": "flashinfer", "prefill_attention_backend": nil, "decode_attention_backend": nil,
		// lpm without the radix cache falls back to fcfs
		"schedule_policy": "fcfs", "disable_radix_cache": true,
		"chunked_prefill_size": 4096.0, "page_size": 1.0, "max_prefill_tokens": 16384.0, "tp_size": 1.0,
		"cuda_graph_max_bs": 256.0, "sampling_backend": "flashinfer", "stream_interval": 1.0,
	}
	for k, v := range want {
		if info[k] != v {
			t.Errorf("server_info %s = %v, want %v", k, info[k], v)
		}
	}
	for _, k := range []string{"max_total_num_tokens", "max_running_requests", "mem_fraction_static", "context_length", "cuda_graph_bs", "internal_states"} {
		if info[k] == nil {
			t.Errorf("server_info %s is null", k)
		}
	}
	mi := getJSON(t, ts.url+"/get_model_info")
	if mi["model_path"] != "meta-llama/Llama-3.1-8B-Instruct" || mi["is_generation"] != true {
		t.Errorf("model_info %v", mi)
	}
}
