package sampling

// Value rules, on top of a failure cause's signatures (feasibility.go): a
// cause seen on two or more configurations that share a parameter value no
// configuration has passed with is predicted for every configuration with
// that value, and a conditional one for a value that passed only together
// with values of other parameters the failures never had.

// valueRuleProb is the violation probability a value rule predicts: all
// but certain, yet a candidate the surrogate finds outstanding may still
// test it (and bring the counter-example).
const valueRuleProb = 0.97

// ruled reports whether a value rule predicts that x violates.
func (m *constraintModel) ruled(x []int) bool {
	if !m.rules {
		return false
	}
	for j, v := range x {
		if m.valViol[j][v] >= 2 && m.valPass[j][v] == 0 {
			return true
		}
	}
	if m.cond == nil {
		m.cond = m.condRules()
	}
	for _, r := range m.cond {
		if x[r.j] != r.v {
			continue
		}
		hit := true
		for _, s := range r.splits {
			if s.pass[x[s.k]] {
				hit = false
				break
			}
		}
		if hit {
			return true
		}
	}
	return false
}

// condRule is a conditional value rule: a cause seen twice on
// configurations with value v of parameter j, which passed with that value
// too but only together with values of other parameters the failures never
// had ("torch_native decode fails with CUDA graphs on": it passes with
// cuda_graph_max_bs None, fails with 16 and 80). It predicts the cause for
// configurations with value v whose values of every such parameter k are
// none of those it passed with (so also for cuda_graph_max_bs 32, never
// tried).
type condRule struct {
	j, v   int
	splits []condSplit
}

type condSplit struct {
	k    int
	pass []bool // by value of k: seen passing together with j = v
}

// condRules derives the conditional value rules from the observations
// (cached until the next observation).
func (m *constraintModel) condRules() []condRule {
	out := []condRule{}
	for j := range m.k {
		for v := range m.k[j] {
			if m.valViol[j][v] < 2 || m.valPass[j][v] == 0 {
				continue
			}
			r := condRule{j: j, v: v}
			for k := range m.k {
				if k == j {
					continue
				}
				pass, fail := make([]bool, m.k[k]), make([]bool, m.k[k])
				for _, o := range m.obs {
					if o.x[j] != v {
						continue
					}
					if o.viol {
						fail[o.x[k]] = true
					} else {
						pass[o.x[k]] = true
					}
				}
				disjoint := true
				for i := range pass {
					if pass[i] && fail[i] {
						disjoint = false
						break
					}
				}
				if disjoint {
					r.splits = append(r.splits, condSplit{k: k, pass: pass})
				}
			}
			if len(r.splits) > 0 {
				out = append(out, r)
			}
		}
	}
	return out
}
