package sampling

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
)

// codec maps configurations between typed parameters (events.Params) and
// the index vectors the algorithms work on: x[j] is the index of parameter
// j's value in the spec's list of values.
type codec struct {
	names   []string
	values  [][]any    // typed, normalised values, spec order
	choices [][]string // their string forms: goptuna's categorical choices
	index   map[string]int
	// dist[j][a][b] is how far apart values a and b of parameter j are, in
	// [0, 1], for the surrogate's kernel: numeric values are ordered (by
	// value, |rank(a) - rank(b)| / (n - 1) over the numeric values, so 4 is
	// near 8 and far from 1); anything else (None, strings, booleans) is 1
	// from every other value.
	dist [][][]float64
	// gpuParams are the indices of the parameters the GPU count reads
	// (tp_size, pp_size, dp_size, enable_dp_attention), -1 when not searched.
	gpuParams [4]int
}

func newCodec(space study.Space) (*codec, error) {
	c := &codec{index: make(map[string]int, len(space))}
	for j, p := range space {
		def, ok := study.LookupParam(p.Name)
		if !ok {
			return nil, fmt.Errorf("space.%s: %w", p.Name, study.ErrUnknownParam)
		}
		if len(p.Values) == 0 {
			return nil, fmt.Errorf("space.%s: no values", p.Name)
		}
		if _, dup := c.index[p.Name]; dup {
			return nil, fmt.Errorf("space.%s: listed twice", p.Name)
		}
		vals := make([]any, len(p.Values))
		strs := make([]string, len(p.Values))
		used := map[string]bool{}
		for i, v := range p.Values {
			nv, err := study.NormalizeValue(def, v)
			if err != nil {
				return nil, fmt.Errorf("space.%s[%d]: %w", p.Name, i, err)
			}
			vals[i] = nv
			s := study.FormatValue(nv)
			// goptuna needs distinct choices; a collision (never for a
			// validated space) gets the index appended.
			if used[s] {
				s += "#" + strconv.Itoa(i)
			}
			used[s] = true
			strs[i] = s
		}
		c.names = append(c.names, p.Name)
		c.dist = append(c.dist, valueDistances(vals))
		c.values = append(c.values, vals)
		c.choices = append(c.choices, strs)
		c.index[p.Name] = j
	}
	if len(c.names) == 0 {
		return nil, fmt.Errorf("space: no parameters")
	}
	for i, name := range gpuParamNames {
		c.gpuParams[i] = -1
		if j, ok := c.index[name]; ok {
			c.gpuParams[i] = j
		}
	}
	return c, nil
}

// valueDistances builds one parameter's distance matrix (see codec.dist).
func valueDistances(vals []any) [][]float64 {
	n := len(vals)
	num := make([]float64, n)
	isNum := make([]bool, n)
	var nums []float64
	for i, v := range vals {
		switch x := v.(type) {
		case int:
			num[i], isNum[i] = float64(x), true
		case float64:
			num[i], isNum[i] = x, true
		}
		if isNum[i] {
			nums = append(nums, num[i])
		}
	}
	sort.Float64s(nums)
	rank := func(v float64) float64 { return float64(sort.SearchFloat64s(nums, v)) }
	d := make([][]float64, n)
	for a := range n {
		d[a] = make([]float64, n)
		for b := range n {
			switch {
			case a == b:
			case isNum[a] && isNum[b] && len(nums) > 1:
				d[a][b] = math.Abs(rank(num[a])-rank(num[b])) / float64(len(nums)-1)
			default:
				d[a][b] = 1
			}
		}
	}
	return d
}

// gpuParamNames are the parameters study.GPUsNeeded reads.
var gpuParamNames = [4]string{"tp_size", "pp_size", "dp_size", "enable_dp_attention"}

// gpuLevels bounds the derived GPU-count feature: log2 of the GPUs a
// configuration occupies, 0 (one GPU) to gpuLevels (and more).
const gpuLevels = 6

// features extends x with derived features for the surrogate: the log2 of
// the GPUs the configuration occupies (study.GPUsNeeded: tp × pp × dp, or tp
// × pp with DP attention). Throughput scales with the GPUs a server gets
// however they are split, so configurations with equal GPU counts are
// similar in a way the per-parameter distances cannot see (tp 8 × dp 1 and
// tp 1 × dp 8 differ in two parameters but share eight GPUs).
func (c *codec) features(x []int) []int {
	f := make([]int, len(x)+1)
	copy(f, x)
	p := make(events.Params, len(gpuParamNames))
	for i, j := range c.gpuParams {
		if j >= 0 {
			p[gpuParamNames[i]] = c.values[j][x[j]]
		}
	}
	n := study.GPUsNeeded(p, nil)
	l := 0
	for n > 1 && l < gpuLevels {
		n >>= 1
		l++
	}
	f[len(x)] = l
	return f
}

// featureDist is the distance matrices of features(x): the parameters'
// own, then the GPU-count level's (|Δlevel| / 3, at most 1: one GPU and
// eight are as different as two categorical values).
func (c *codec) featureDist() [][][]float64 {
	out := append([][][]float64(nil), c.dist...)
	g := make([][]float64, gpuLevels+1)
	for a := range g {
		g[a] = make([]float64, gpuLevels+1)
		for b := range g[a] {
			g[a][b] = math.Min(1, math.Abs(float64(a-b))/3)
		}
	}
	return append(out, g)
}

// dims is the number of parameters.
func (c *codec) dims() int { return len(c.names) }

// size is the number of configurations, saturating at a large value.
func (c *codec) size() float64 {
	n := 1.0
	for _, v := range c.values {
		n *= float64(len(v))
	}
	return n
}

// decode returns the typed parameters of x.
func (c *codec) decode(x []int) events.Params {
	p := make(events.Params, len(x))
	for j, i := range x {
		p[c.names[j]] = c.values[j][i]
	}
	return p
}

// encode maps parameters to an index vector; ok is false when a searched
// parameter is missing, a value is not among the spec's values, or p names a
// parameter outside the space.
func (c *codec) encode(p events.Params) (x []int, ok bool) {
	if len(p) != len(c.names) {
		return nil, false
	}
	x = make([]int, len(c.names))
	for j, name := range c.names {
		v, present := p[name]
		if !present {
			return nil, false
		}
		def, _ := study.LookupParam(name)
		nv, err := study.NormalizeValue(def, v)
		if err != nil {
			return nil, false
		}
		found := -1
		for i, cand := range c.values[j] {
			if study.ValueEqual(cand, nv) {
				found = i
				break
			}
		}
		if found < 0 {
			return nil, false
		}
		x[j] = found
	}
	return x, true
}

// keyOf is the duplicate-detection key of an index vector.
func keyOf(x []int) string {
	var b strings.Builder
	for j, i := range x {
		if j > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i))
	}
	return b.String()
}

// paramsKey is the duplicate-detection key of parameters that do not encode
// (outside the current space): their normalised values, sorted by name.
func paramsKey(p events.Params) string { return "raw:" + study.ParamsKey(p) }

// random draws a uniform configuration.
func (c *codec) random(rng *rand.Rand) []int {
	x := make([]int, len(c.values))
	for j, v := range c.values {
		x[j] = rng.IntN(len(v))
	}
	return x
}

// baseline is SGLang's defaults expressed in the space: per parameter nil
// (pass no flag) when nil is a candidate, else the registry default when it
// is a candidate, else the first value.
func (c *codec) baseline() []int {
	x := make([]int, len(c.names))
	for j, name := range c.names {
		def, _ := study.LookupParam(name)
		x[j] = 0
		nilAt, defAt := -1, -1
		for i, v := range c.values[j] {
			if v == nil && nilAt < 0 {
				nilAt = i
			}
			if def.Default != nil && v != nil && defAt < 0 {
				if nd, err := study.NormalizeValue(def, def.Default); err == nil && study.ValueEqual(nd, v) {
					defAt = i
				}
			}
		}
		switch {
		case nilAt >= 0:
			x[j] = nilAt
		case defAt >= 0:
			x[j] = defAt
		}
	}
	return x
}

// next advances x to the next configuration in mixed-radix order (wrapping
// around), for the exhaustive scan that finds an unused configuration.
func (c *codec) next(x []int) {
	for j := len(x) - 1; j >= 0; j-- {
		x[j]++
		if x[j] < len(c.values[j]) {
			return
		}
		x[j] = 0
	}
}

// Baseline returns the configuration trial 0 runs: SGLang's defaults
// expressed in spec's space (see codec.baseline).
func Baseline(space study.Space) (events.Params, error) {
	c, err := newCodec(space)
	if err != nil {
		return nil, err
	}
	return c.decode(c.baseline()), nil
}

// layouts enumerates every combination of the searched GPU-layout
// parameters' values (tp_size, pp_size, dp_size, enable_dp_attention), as
// value indices in gpuParams order (-1 where a parameter is not searched).
func (c *codec) layouts() [][4]int {
	out := [][4]int{{-1, -1, -1, -1}}
	for i, j := range c.gpuParams {
		if j < 0 {
			continue
		}
		var next [][4]int
		for _, l := range out {
			for v := range c.values[j] {
				l2 := l
				l2[i] = v
				next = append(next, l2)
			}
		}
		out = next
	}
	return out
}

// withLayout returns x with its GPU-layout parameters set to l.
func (c *codec) withLayout(x []int, l [4]int) []int {
	y := append([]int(nil), x...)
	for i, j := range c.gpuParams {
		if j >= 0 {
			y[j] = l[i]
		}
	}
	return y
}

// layoutOf is x's GPU layout (see layouts).
func (c *codec) layoutOf(x []int) [4]int {
	l := [4]int{-1, -1, -1, -1}
	for i, j := range c.gpuParams {
		if j >= 0 {
			l[i] = x[j]
		}
	}
	return l
}
