package trial

import (
	"context"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/runner/internal/sglang"
)

// derivedArgs are values SGLang sets itself when left to it (from the GPU's
// memory, the model and the other flags) that matter to a config's
// performance: recorded in EffectiveParams even when the study neither
// tunes nor fixes them (shared/reference/sglang.md A.3, A.4).
var derivedArgs = []string{
	"mem_fraction_static", "chunked_prefill_size", "max_prefill_tokens", "cuda_graph_max_bs",
	"attention_backend", "prefill_attention_backend", "decode_attention_backend", "sampling_backend",
	"page_size", "max_running_requests", "disable_overlap_schedule", "enable_mixed_chunk", "disable_cuda_graph",
}

// argAliases are the names newer SGLang reports a field under.
var argAliases = map[string][]string{
	"cuda_graph_max_bs": {"cuda_graph_max_bs_decode"},
}

// recordServerInfo reads what the healthy server runs into res: SGLang's
// version, the model it loaded, the effective values and which differ from
// the ones asked. It returns false, with res failed, when the server's info
// is unreadable (FailServerInfo) or it loaded another model than the spec's
// (FailWrongModel): then nothing is benchmarked. A cancelled ctx returns its
// error.
func recordServerInfo(ctx context.Context, q events.TrialQueued, baseURL string, res *events.TrialResult) (bool, error) {
	info, err := sglang.ReadInfo(ctx, baseURL, apiKey(q.ServerArgs))
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, ctxErr
	}
	if err != nil {
		fail(res, events.FailServerInfo, "what the server runs is unknown, so the trial is not measured: "+err.Error())
		return false, nil
	}
	res.SGLangVersion, res.ModelPathLoaded = info.Version, info.ModelPath
	if asked := modelPath(q.ServerArgs); !sameModel(asked, info.ModelPath) {
		fail(res, events.FailWrongModel, fmt.Sprintf("the server loaded model %q (%s), but the spec names %q: check the server command (a wrapper that sets its own --model-path?)",
			info.ModelPath, sglang.ModelInfoPath, asked))
		return false, nil
	}
	res.EffectiveParams, res.AdjustedParams = effectiveParams(q, info.Args)
	return true, nil
}

// modelPath is the --model-path of a trial's server args.
func modelPath(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--model-path" || args[i] == "--model" {
			return args[i+1]
		}
	}
	return ""
}

// sameModel reports whether the server's model_path is the model asked for:
// the same path or hub id (hub ids are case-insensitive), or the local
// snapshot of that hub id in a Hugging Face cache
// (.../models--org--name/snapshots/<revision>).
func sameModel(asked, loaded string) bool {
	clean := func(s string) string {
		s = strings.TrimSpace(s)
		if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
			return filepath.Clean(s)
		}
		return strings.TrimSuffix(s, "/")
	}
	a, l := clean(asked), clean(loaded)
	if a == l || (!filepath.IsAbs(a) && strings.EqualFold(a, l)) {
		return true
	}
	if filepath.IsAbs(a) {
		return false
	}
	repo := "models--" + strings.ReplaceAll(a, "/", "--")
	snapshots := filepath.Dir(l)
	return filepath.Base(snapshots) == "snapshots" && strings.EqualFold(filepath.Base(filepath.Dir(snapshots)), repo)
}

// effectiveParams picks, from the server's args, the tuned parameters, the
// static flags and derivedArgs, and lists (sorted) those whose effective
// value differs from the one asked.
func effectiveParams(q events.TrialQueued, server map[string]any) (events.Params, []string) {
	asked := foldAttentionBackends(askedValues(q))
	names := append(slices.Sorted(maps.Keys(asked)), derivedArgs...)
	eff := events.Params{}
	var adjusted []string
	for _, name := range names {
		if _, done := eff[name]; done {
			continue
		}
		v, ok := serverArg(server, name)
		if !ok {
			continue
		}
		eff[name] = v
		want, askedFor := asked[name]
		if askedFor && want != nil && !sameValue(name, want, v) {
			adjusted = append(adjusted, name)
		}
	}
	sort.Strings(adjusted)
	if len(eff) == 0 {
		eff = nil
	}
	return eff, adjusted
}

// foldAttentionBackends applies SGLang's own folding to the asked values:
// equal prefill and decode attention backends become attention_backend and
// both are reported as None (shared/reference/sglang.md A.2), so a config
// that asked for them is not listed as adjusted for the folding alone.
func foldAttentionBackends(asked map[string]any) map[string]any {
	p, d := asked["prefill_attention_backend"], asked["decode_attention_backend"]
	if p == nil || p != d {
		return asked
	}
	asked["attention_backend"] = p
	asked["prefill_attention_backend"], asked["decode_attention_backend"] = nil, nil
	return asked
}

// serverArg looks a ServerArgs field up under its name or a newer alias.
func serverArg(server map[string]any, name string) (any, bool) {
	if v, ok := server[name]; ok {
		return v, true
	}
	for _, alias := range argAliases[name] {
		if v, ok := server[alias]; ok {
			return v, true
		}
	}
	return nil, false
}

// askedValues are the values the trial asked for, by ServerArgs name: every
// known flag of its server args (a bare boolean flag is true) and every
// tuned parameter (None is nil, a false boolean passes no flag).
func askedValues(q events.TrialQueued) map[string]any {
	out := map[string]any{}
	for name, v := range q.Params {
		def, ok := study.LookupParam(name)
		if !ok {
			continue
		}
		if nv, err := study.NormalizeValue(def, v); err == nil {
			out[name] = nv
		}
	}
	args := q.ServerArgs
	for i := 0; i < len(args); i++ {
		def, ok := study.LookupFlag(args[i])
		if !ok || def.Name == "model_path" {
			continue
		}
		if def.Kind == study.KindBool {
			out[def.Name] = true
			continue
		}
		if i+1 >= len(args) {
			break
		}
		i++
		switch def.Kind {
		case study.KindInt:
			if n, err := strconv.Atoi(args[i]); err == nil {
				out[def.Name] = n
			}
		case study.KindFloat:
			if f, err := strconv.ParseFloat(args[i], 64); err == nil {
				out[def.Name] = f
			}
		default:
			out[def.Name] = args[i]
		}
	}
	return out
}

// sameValue compares an asked value with the server's JSON value: numbers
// by value, a chunked_prefill_size of 0 or below is "disabled" whatever its
// number (R-C1), strings and booleans as they are.
func sameValue(name string, asked, got any) bool {
	af, aNum := study.Numeric(asked)
	gf, gNum := study.Numeric(got)
	switch {
	case aNum && gNum:
		if name == "chunked_prefill_size" && af <= 0 && gf <= 0 {
			return true
		}
		return math.Abs(af-gf) <= 1e-9*math.Max(1, math.Abs(af))
	case aNum != gNum:
		return false
	}
	return asked == got
}
