package sampling

import (
	"fmt"
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
		c.values = append(c.values, vals)
		c.choices = append(c.choices, strs)
		c.index[p.Name] = j
	}
	if len(c.names) == 0 {
		return nil, fmt.Errorf("space: no parameters")
	}
	return c, nil
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
func paramsKey(p events.Params) string {
	norm, err := study.NormalizeParams(p)
	if err != nil {
		norm = p
	}
	names := make([]string, 0, len(norm))
	for k := range norm {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("raw:")
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(study.FormatValue(norm[k]))
		b.WriteByte(';')
	}
	return b.String()
}

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
