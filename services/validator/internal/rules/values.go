package rules

import (
	"strconv"

	"github.com/sgtune/sgtune/pkg/study"
)

// value is the effective requested value of a parameter: the candidate's,
// else the spec's static arg; nil when neither sets it (None).
func (in Input) value(name string) any {
	if v, ok := in.Params[name]; ok {
		return v
	}
	return in.Static[name]
}

// intSet returns an integer parameter's value and whether it is set (not None).
func (in Input) intSet(name string) (int, bool) {
	switch x := in.value(name).(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case float64:
		return int(x), true
	}
	return 0, false
}

// intOr returns an integer parameter's value, or SGLang's fixed default when
// it is None (1 for tp/pp/dp, 16384 for max_prefill_tokens, ...), or def when
// SGLang's default depends on the hardware.
func (in Input) intOr(name string, def int) int {
	if v, ok := in.intSet(name); ok {
		return v
	}
	if d, ok := registryDefault(name).(int); ok {
		return d
	}
	return def
}

// size returns a parallel size (tp, pp, dp): None means 1.
func (in Input) size(name string) int { return in.intOr(name, 1) }

// flag returns a bool parameter's value; None means false (every store_true flag's default).
func (in Input) flag(name string) bool {
	b, _ := in.value(name).(bool)
	return b
}

// str returns a string parameter's value, or "" when None.
func (in Input) str(name string) string {
	s, _ := in.value(name).(string)
	return s
}

// strOr returns a string parameter's value or SGLang's fixed default.
func (in Input) strOr(name string) string {
	if s := in.str(name); s != "" {
		return s
	}
	s, _ := registryDefault(name).(string)
	return s
}

// chunked returns chunked_prefill_size when chunked prefill is set to a
// positive chunk; ok is false for None (hardware-dependent default) and for
// ≤ 0 (chunked prefill disabled).
func (in Input) chunked() (int, bool) {
	v, ok := in.intSet("chunked_prefill_size")
	return v, ok && v > 0
}

// chunkingDisabled reports chunked_prefill_size ≤ 0 (explicitly disabled).
func (in Input) chunkingDisabled() bool {
	v, ok := in.intSet("chunked_prefill_size")
	return ok && v <= 0
}

// gpus is the number of GPUs the config occupies and the sentence that shows the arithmetic.
func (in Input) gpus() (int, string) {
	tp, pp, dp := in.size("tp_size"), in.size("pp_size"), in.size("dp_size")
	if in.flag("enable_dp_attention") {
		return tp * pp, "tp_size × pp_size = " + itoa(tp) + " × " + itoa(pp) + " = " + itoa(tp*pp) +
			" GPUs (DP attention runs dp_size = " + itoa(dp) + " inside the TP group)"
	}
	return tp * pp * dp, "tp_size × pp_size × dp_size = " + itoa(tp) + " × " + itoa(pp) + " × " + itoa(dp) +
		" = " + itoa(tp*pp*dp) + " GPUs"
}

// backends returns the effective prefill and decode attention backends: the
// phase-specific flag when given, else attention_backend; "" means SGLang picks.
func (in Input) backends() (prefill, decode string) {
	all := in.str("attention_backend")
	prefill, decode = in.str("prefill_attention_backend"), in.str("decode_attention_backend")
	if prefill == "" {
		prefill = all
	}
	if decode == "" {
		decode = all
	}
	return prefill, decode
}

// usesBackend reports whether any of the three backend flags names one of names,
// and which flag does.
func (in Input) usesBackend(names ...string) (flag, backend string, ok bool) {
	for _, f := range []string{"attention_backend", "prefill_attention_backend", "decode_attention_backend"} {
		b := in.str(f)
		for _, n := range names {
			if b == n {
				return f, b, true
			}
		}
	}
	return "", "", false
}

// mainBranch reports whether Version names SGLang's main branch rather than a release.
func (in Input) mainBranch() bool { return isMain(in.Version) }

func isMain(version string) bool { return study.IsMainVersion(version) }

func registryDefault(name string) any {
	def, ok := study.LookupParam(name)
	if !ok {
		return nil
	}
	return def.Default
}

func itoa(n int) string { return strconv.Itoa(n) }

func fmtVal(v any) string { return study.FormatValue(v) }
