package sim

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sgtune/sgtune/sim/model"
)

// flagKind is the value type of a launch flag.
type flagKind int

const (
	kindString flagKind = iota
	kindInt
	kindFloat
	kindBool
	kindIntList // nargs="+" of ints (--cuda-graph-bs 1 2 4)
)

// flagSpec describes one sglang.launch_server flag as argparse knows it.
type flagSpec struct {
	// name is the ServerArgs field ("tp_size").
	name string
	// flags are every accepted spelling, the primary one first.
	flags []string
	kind  flagKind
	// choices restricts the value (argparse choices); nil means any.
	choices []string
	// def is the default reported by /get_server_info when the flag is not given.
	def any
}

// flagSource supplies flag specs. The shared parameter registry in pkg/study
// is one source; simFlags covers what the registry does not list.
type flagSource interface {
	specs() []flagSpec
}

// staticSource is a fixed list of specs.
type staticSource []flagSpec

func (s staticSource) specs() []flagSpec { return s }

// flagTable is the merged set of flags, looked up by spelling.
type flagTable struct {
	specs  []flagSpec
	byFlag map[string]int
}

// newFlagTable merges sources in order: the first source to define a name
// fixes its kind, choices and default; later sources may only add spellings
// that no other flag uses.
func newFlagTable(sources ...flagSource) *flagTable {
	t := &flagTable{byFlag: map[string]int{}}
	byName := map[string]int{}
	for _, src := range sources {
		for _, s := range src.specs() {
			var free []string
			for _, f := range s.flags {
				if _, taken := t.byFlag[f]; !taken && !slices.Contains(free, f) {
					free = append(free, f)
				}
			}
			i, known := byName[s.name]
			if !known {
				if len(free) == 0 {
					continue
				}
				s.flags = nil
				t.specs = append(t.specs, s)
				i = len(t.specs) - 1
				byName[s.name] = i
			}
			t.specs[i].flags = append(t.specs[i].flags, free...)
			for _, f := range free {
				t.byFlag[f] = i
			}
		}
	}
	return t
}

// lookup finds a flag by exact spelling or, as argparse does by default
// (allow_abbrev), by an unambiguous prefix.
func (t *flagTable) lookup(flag string) (*flagSpec, error) {
	if i, ok := t.byFlag[flag]; ok {
		return &t.specs[i], nil
	}
	if !strings.HasPrefix(flag, "--") || len(flag) < 3 {
		return nil, nil
	}
	var matches []string
	idx := -1
	for f, i := range t.byFlag {
		if strings.HasPrefix(f, flag) {
			matches = append(matches, f)
			idx = i
		}
	}
	switch len(matches) {
	case 0:
		return nil, nil
	case 1:
		return &t.specs[idx], nil
	}
	slices.Sort(matches)
	return nil, usageErrorf("ambiguous option: %s could match %s", flag, strings.Join(matches, ", "))
}

// UsageError is an argparse-style command-line error; the process exits 2.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return "sglang-sim: error: " + e.msg }

func usageErrorf(format string, args ...any) *UsageError {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// errHelp is returned when -h/--help was given; help has been printed.
var errHelp = errors.New("help requested")

// serverArgs are the parsed flags: explicit values by ServerArgs name.
type serverArgs struct {
	table  *flagTable
	values map[string]any
}

var negNumber = regexp.MustCompile(`^-\d+$|^-\d*\.\d+$`)

func isValue(s string) bool { return !strings.HasPrefix(s, "-") || negNumber.MatchString(s) }

// parseArgs parses argv like argparse with SGLang's launch_server parser.
func parseArgs(t *flagTable, argv []string) (*serverArgs, error) {
	sa := &serverArgs{table: t, values: map[string]any{}}
	var extras []string
	for i := 0; i < len(argv); i++ {
		arg := argv[i]
		if arg == "-h" || arg == "--help" {
			return nil, errHelp
		}
		if arg == "--" {
			extras = append(extras, argv[i+1:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || negNumber.MatchString(arg) || arg == "-" {
			extras = append(extras, arg)
			continue
		}
		flag, explicit, hasExplicit := strings.Cut(arg, "=")
		spec, err := t.lookup(flag)
		if err != nil {
			return nil, err
		}
		if spec == nil {
			extras = append(extras, arg)
			continue
		}
		display := strings.Join(spec.flags, "/")
		switch spec.kind {
		case kindBool:
			if hasExplicit {
				return nil, usageErrorf("argument %s: ignored explicit argument '%s'", display, explicit)
			}
			sa.values[spec.name] = true
			continue
		case kindIntList:
			var vals []string
			if hasExplicit {
				vals = append(vals, explicit)
			}
			for i+1 < len(argv) && isValue(argv[i+1]) {
				i++
				vals = append(vals, argv[i])
			}
			if len(vals) == 0 {
				return nil, usageErrorf("argument %s: expected at least one argument", display)
			}
			list := make([]int, 0, len(vals))
			for _, v := range vals {
				n, err := pyInt(v)
				if err != nil {
					return nil, usageErrorf("argument %s: invalid int value: '%s'", display, v)
				}
				list = append(list, n)
			}
			sa.values[spec.name] = list
			continue
		}
		val := explicit
		if !hasExplicit {
			if i+1 >= len(argv) || !isValue(argv[i+1]) {
				return nil, usageErrorf("argument %s: expected one argument", display)
			}
			i++
			val = argv[i]
		}
		var v any
		switch spec.kind {
		case kindInt:
			n, err := pyInt(val)
			if err != nil {
				return nil, usageErrorf("argument %s: invalid int value: '%s'", display, val)
			}
			v = n
		case kindFloat:
			f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil {
				return nil, usageErrorf("argument %s: invalid float value: '%s'", display, val)
			}
			v = f
		default:
			v = val
		}
		if len(spec.choices) > 0 && !slices.Contains(spec.choices, fmt.Sprint(v)) {
			quoted := make([]string, len(spec.choices))
			for i, c := range spec.choices {
				quoted[i] = "'" + c + "'"
			}
			return nil, usageErrorf("argument %s: invalid choice: '%s' (choose from %s)", display, val, strings.Join(quoted, ", "))
		}
		sa.values[spec.name] = v
	}
	if _, ok := sa.values["model_path"]; !ok {
		return nil, usageErrorf("the following arguments are required: --model-path")
	}
	if len(extras) > 0 {
		return nil, usageErrorf("unrecognized arguments: %s", strings.Join(extras, " "))
	}
	return sa, nil
}

// pyInt parses like Python's int(str).
func pyInt(s string) (int, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "_") {
		if strings.HasPrefix(s, "_") || strings.HasSuffix(s, "_") || strings.Contains(s, "__") {
			return 0, strconv.ErrSyntax
		}
		s = strings.ReplaceAll(s, "_", "")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return int(n), err
}

func (a *serverArgs) has(name string) bool { _, ok := a.values[name]; return ok }

func (a *serverArgs) str(name string) string {
	if v, ok := a.values[name].(string); ok {
		return v
	}
	return ""
}

func (a *serverArgs) int(name string) int {
	if v, ok := a.values[name].(int); ok {
		return v
	}
	return 0
}

func (a *serverArgs) float(name string) float64 {
	if v, ok := a.values[name].(float64); ok {
		return v
	}
	return 0
}

func (a *serverArgs) bool(name string) bool {
	v, _ := a.values[name].(bool)
	return v
}

// count returns an explicit count flag, mapping explicit values below 1 to
// -1 so that model.NewPlan rejects them (0 in model.Config means "not given").
func (a *serverArgs) count(name string) int {
	if !a.has(name) {
		return 0
	}
	if n := a.int(name); n >= 1 {
		return n
	}
	return -1
}

// config converts the parsed flags into the model's Config.
func (a *serverArgs) config() model.Config {
	c := model.Config{
		TP: a.count("tp_size"), DP: a.count("dp_size"), PP: a.count("pp_size"), EPSize: a.count("ep_size"),
		AttentionBackend:             a.str("attention_backend"),
		PrefillAttentionBackend:      a.str("prefill_attention_backend"),
		DecodeAttentionBackend:       a.str("decode_attention_backend"),
		MaxPrefillTokens:             a.count("max_prefill_tokens"),
		PageSize:                     a.count("page_size"),
		CudaGraphMaxBS:               a.count("cuda_graph_max_bs"),
		DisableCudaGraph:             a.bool("disable_cuda_graph"),
		EnableMixedChunk:             a.bool("enable_mixed_chunk"),
		DisableOverlapSchedule:       a.bool("disable_overlap_schedule"),
		EnableTorchCompile:           a.bool("enable_torch_compile"),
		TorchCompileMaxBS:            a.count("torch_compile_max_bs"),
		NumContinuousDecodeSteps:     a.count("num_continuous_decode_steps"),
		EnableTwoBatchOverlap:        a.bool("enable_two_batch_overlap"),
		MoEA2ABackend:                a.str("moe_a2a_backend"),
		TokenizerWorkerNum:           a.count("tokenizer_worker_num"),
		SamplingBackend:              a.str("sampling_backend"),
		SchedulePolicy:               a.str("schedule_policy"),
		ScheduleConservativeness:     a.float("schedule_conservativeness"),
		MemFractionStatic:            a.float("mem_fraction_static"),
		MaxRunningRequests:           a.count("max_running_requests"),
		MaxTotalTokens:               a.count("max_total_tokens"),
		EnableDPAttention:            a.bool("enable_dp_attention"),
		DisableRadixCache:            a.bool("disable_radix_cache"),
		StreamInterval:               a.count("stream_interval"),
		ContextLength:                a.count("context_length"),
		KVCacheDtype:                 a.str("kv_cache_dtype"),
		Dtype:                        a.str("dtype"),
		Quantization:                 a.str("quantization"),
		HasAPIKey:                    a.str("api_key") != "",
		EnableDeterministicInference: a.bool("enable_deterministic_inference"),
		SkipServerWarmup:             a.bool("skip_server_warmup"),
	}
	if a.has("chunked_prefill_size") {
		c.ChunkedPrefillSize = a.int("chunked_prefill_size")
		if c.ChunkedPrefillSize <= 0 {
			c.ChunkedPrefillSize = -1
		}
	}
	if a.has("mem_fraction_static") && c.MemFractionStatic <= 0 {
		c.MemFractionStatic = -1
	}
	if v, ok := a.values["cuda_graph_bs"].([]int); ok {
		c.CudaGraphBS = v
	}
	return c
}
