package study

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/sgtune/sgtune/pkg/events"
)

// LaunchArgs returns the server flags of one trial, spelled as SGLang spells
// them: --model-path, the spec's static flags, then the trial's parameters in
// registry order. A nil value passes no flag; a bool passes its bare flag when
// true and nothing when false. --host and --port are the runner's to add.
func (s *Spec) LaunchArgs(p events.Params) ([]string, error) {
	args := []string{"--model-path", s.Model.Path}
	merged := make(map[string]any, len(p)+len(s.Model.StaticArgs))
	for k, v := range s.Model.StaticArgs {
		merged[k] = v
	}
	for k, v := range p {
		merged[k] = v
	}
	names := make([]string, 0, len(merged))
	for k := range merged {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		ii, jj := registryIndex(names[i]), registryIndex(names[j])
		if ii != jj {
			return ii < jj
		}
		return names[i] < names[j]
	})
	for _, name := range names {
		def, ok := LookupParam(name)
		if !ok {
			return nil, unknownParamError(name)
		}
		if def.RunnerOwned || name == "model_path" {
			return nil, fmt.Errorf("parameter %s: set by sgtune itself", name)
		}
		v, err := NormalizeValue(def, merged[name])
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", name, err)
		}
		switch x := v.(type) {
		case nil:
		case bool:
			if x {
				args = append(args, def.Flag)
			}
		case int:
			args = append(args, def.Flag, strconv.Itoa(x))
		case float64:
			args = append(args, def.Flag, strconv.FormatFloat(x, 'g', -1, 64))
		case string:
			args = append(args, def.Flag, x)
		}
	}
	return args, nil
}

// GPUsNeeded is how many GPUs a config occupies: tp × pp × dp, or tp × pp
// with DP attention (whose DP ranks live inside the TP group).
func GPUsNeeded(p events.Params, static map[string]any) int {
	get := func(name string) int {
		if v := AsInt(p, name, 0); v > 0 {
			return v
		}
		return max(AsInt(static, name, 1), 1)
	}
	tp, pp, dp := get("tp_size"), get("pp_size"), get("dp_size")
	if AsBool(p, "enable_dp_attention") || AsBool(static, "enable_dp_attention") {
		return tp * pp
	}
	return tp * pp * dp
}
