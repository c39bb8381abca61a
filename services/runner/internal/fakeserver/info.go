package fakeserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// FakeVersion is the version /get_server_info reports.
const FakeVersion = "0.5.5-fake"

// getModelInfo answers /get_model_info as SGLang does, with the model it was
// launched with (or SGTUNE_FAKE_LOADED_MODEL: a server that loaded another).
func (s *server) getModelInfo(w http.ResponseWriter, _ *http.Request) {
	model := os.Getenv("SGTUNE_FAKE_LOADED_MODEL")
	if model == "" {
		model = flagValue(s.args, "--model-path")
	}
	writeJSON(w, map[string]any{"model_path": model, "tokenizer_path": model, "is_generation": true,
		"preferred_sampling_params": nil, "weight_version": "default"})
}

// getServerInfo answers /get_server_info: its launch flags as ServerArgs
// fields (--chunked-prefill-size 4096 -> chunked_prefill_size: 4096, a bare
// flag -> true), SGLang's own choices for two values left to it, the
// SGTUNE_FAKE_ADJUST overrides, internal_states and version.
func (s *server) getServerInfo(w http.ResponseWriter, _ *http.Request) {
	switch os.Getenv("SGTUNE_FAKE_INFO") {
	case "http500":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"object":"error","message":"scheduler is not responding"}`)
		return
	case "garbage":
		fmt.Fprint(w, "<html>502 Bad Gateway</html>")
		return
	}
	out := map[string]any{"mem_fraction_static": 0.88, "attention_backend": "flashinfer"}
	for i := 0; i < len(s.args); i++ {
		name, ok := strings.CutPrefix(s.args[i], "--")
		if !ok || name == "fake-mode" {
			continue
		}
		key := strings.ReplaceAll(name, "-", "_")
		if i+1 < len(s.args) && !strings.HasPrefix(s.args[i+1], "--") {
			out[key] = jsonValue(s.args[i+1])
			i++
		} else {
			out[key] = true
		}
	}
	for _, kv := range strings.Split(os.Getenv("SGTUNE_FAKE_ADJUST"), ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = jsonValue(v)
		}
	}
	out["internal_states"] = []any{map[string]any{"last_gen_throughput": 0.0}}
	out["version"] = FakeVersion
	writeJSON(w, out)
}

// jsonValue reads a flag's value the way SGLang's argparse types would
// leave it: a number, true/false/None, or the string.
func jsonValue(s string) any {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return n
	}
	switch s {
	case "true", "True":
		return true
	case "false", "False":
		return false
	case "None", "null":
		return nil
	}
	return s
}

func flagValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
