package front

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/sgtune/sgtune/pkg/study"
)

const (
	rule80  = "================================================================================"
	dash80  = "--------------------------------------------------------------------------------"
	seedTTF = "ttft"
	seedTPS = "tps"
)

// Print writes the console summary of a front document in the seed's layout
// (header, "Number of finished trials", "Number of Pareto optimal solutions",
// then per solution TTFT in seconds with 4 decimals, TPS in tokens/sec with 2
// decimals and every parameter), followed by sgtune's additions: each
// solution's trial number, gain over the baseline and launch command, then the
// study's counts by failure class and rejection rule and the hypervolume.
// It returns the first write error.
func Print(w io.Writer, doc FrontDoc) error {
	p := &printer{w: w}
	p.line(rule80)
	p.line("Optimization Results")
	p.line(rule80)
	p.line("")
	p.f("Number of finished trials: %d\n", doc.NTrials)
	p.f("Number of Pareto optimal solutions: %d\n", len(doc.ParetoFront))
	p.line("")
	p.f("Pareto Front (Best Trade-offs between %s):\n", objectiveTitle(doc))
	p.line(dash80)
	if len(doc.ParetoFront) == 0 {
		p.line("")
		p.line("  (no feasible completed trial yet)")
	}
	for i, m := range doc.ParetoFront {
		p.line("")
		p.f("Solution %d:\n", i+1)
		if m.TTFT != nil {
			p.f("  TTFT: %.4f seconds\n", *m.TTFT)
		}
		if m.TPS != nil {
			p.f("  TPS: %.2f tokens/sec\n", *m.TPS)
		}
		for _, o := range doc.Objectives {
			if o.Name == seedTTF || o.Name == seedTPS {
				continue
			}
			if v, ok := m.Objectives[o.Name]; ok {
				p.f("  %s: %s\n", o.Name, withUnit(v, o.Unit))
			}
		}
		if c := m.Capacity; c != nil {
			p.f("  Capacity: %s\n", capacityLine(c))
		}
		if v, ok := m.Metrics["output_throughput_per_gpu"]; ok {
			p.f("  Throughput per GPU: %.2f tok/s%s\n", v, gpuCount(m.Metrics))
		}
		if len(m.Curve) > 1 {
			p.f("  Curve: %s\n", curveLine(m.Curve))
		}
		for _, name := range slices.Sorted(maps.Keys(m.WorkloadObjectives)) {
			p.f("  Workload %s: %s\n", name, objectiveList(doc, m.WorkloadObjectives[name]))
		}
		p.line("  Parameters:")
		for _, name := range paramOrder(m.Parameters) {
			p.f("    %s: %s\n", name, study.FormatValue(m.Parameters[name]))
		}
		p.f("  Trial: %d\n", m.TrialNumber)
		if g := gainLine(doc, m); g != "" {
			p.f("  Gain over baseline (trial %d): %s\n", doc.Baseline.TrialNumber, g)
		}
		if len(m.LaunchCommand) > 0 {
			p.f("  Launch command: %s\n", shellJoin(m.LaunchCommand))
		}
		if len(m.Adjusted) > 0 {
			p.f("  SGLang %sran instead: %s\n", versionWord(m.SGLangVersion), adjustedLine(m))
		}
	}
	p.line("")
	p.line(dash80)
	p.f("Study: %s\n", doc.StudyName)
	c := doc.Counts
	pruned := ""
	if c.Pruned > 0 {
		pruned = fmt.Sprintf("; %d pruned", c.Pruned)
	}
	p.f("Trials: %d benchmarked (%d completed, %d feasible, %d infeasible; %d failed%s), %d rejected\n",
		c.Benchmarked, c.Completed, c.Feasible, c.Infeasible, c.Failed, pruned, c.Rejected)
	if doc.GPUHours > 0 {
		p.f("GPU time: %.4g GPU-hours\n", doc.GPUHours)
	}
	if len(c.FailedByClass) > 0 {
		p.line("Failed trials by class:")
		for _, k := range slices.Sorted(maps.Keys(c.FailedByClass)) {
			p.f("  %s: %d\n", k, c.FailedByClass[k])
		}
	}
	if len(c.RejectedByRule) > 0 {
		p.line("Rejections by rule:")
		for _, k := range slices.Sorted(maps.Keys(c.RejectedByRule)) {
			p.f("  %s: %d\n", k, c.RejectedByRule[k])
		}
	}
	if b := doc.Baseline; b != nil {
		kind := "trial 0"
		if b.SGLangDefaults {
			kind = "SGLang defaults"
		}
		p.f("Baseline (trial %d, %s): %s\n", b.TrialNumber, kind, objectiveList(doc, b.Objectives))
	}
	if doc.Reference != nil {
		p.f("Hypervolume: %.6g (reference point %s, from trial %d)\n",
			doc.Hypervolume, objectiveList(doc, doc.ReferencePoint), doc.Reference.AnchorTrial)
	} else {
		p.line("Hypervolume: 0 (no completed trial yet)")
	}
	return p.err
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) line(s string) { p.f("%s\n", s) }

func objectiveTitle(doc FrontDoc) string {
	names := make([]string, len(doc.Objectives))
	for i, o := range doc.Objectives {
		names[i] = strings.ToUpper(o.Name)
	}
	switch len(names) {
	case 0:
		return "TTFT and TPS"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// withUnit formats an objective value: seconds with 4 decimals, other units
// with 6 significant digits.
func withUnit(v float64, unit string) string {
	switch unit {
	case "s":
		return fmt.Sprintf("%.4f s", v)
	case "":
		return fmt.Sprintf("%.6g", v)
	}
	return fmt.Sprintf("%.6g %s", v, unit)
}

// objectiveList renders values as "ttft=0.0250 s, tps=2500.00 tok/s".
func objectiveList(doc FrontDoc, values map[string]float64) string {
	var parts []string
	for _, o := range doc.Objectives {
		v, ok := values[o.Name]
		if !ok {
			continue
		}
		switch o.Name {
		case seedTTF:
			parts = append(parts, fmt.Sprintf("ttft=%.4f %s", v, o.Unit))
		case seedTPS:
			parts = append(parts, fmt.Sprintf("tps=%.2f %s", v, o.Unit))
		default:
			parts = append(parts, o.Name+"="+withUnit(v, o.Unit))
		}
	}
	return strings.TrimSpace(strings.Join(parts, ", "))
}

func gainLine(doc FrontDoc, m FrontMember) string {
	if doc.Baseline == nil || len(m.GainOverBaseline) == 0 {
		return ""
	}
	var parts []string
	for _, o := range doc.Objectives {
		if g, ok := m.GainOverBaseline[o.Name]; ok {
			parts = append(parts, fmt.Sprintf("%s %.2fx", strings.ToUpper(o.Name), g))
		}
	}
	return strings.Join(parts, ", ")
}

// paramOrder lists parameter names in SGLang's flag order (the order of the
// launch command), unknown names last in alphabetical order.
func paramOrder(params map[string]any) []string {
	index := map[string]int{}
	for i, def := range study.Registry() {
		index[def.Name] = i
	}
	names := slices.Collect(maps.Keys(params))
	slices.SortFunc(names, func(a, b string) int {
		ia, oka := index[a]
		ib, okb := index[b]
		switch {
		case oka && okb && ia != ib:
			return ia - ib
		case oka != okb:
			if oka {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return names
}

// shellJoin renders argv for a person to copy into a shell.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@+%", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

// capacityLine renders a front member's capacity under the SLO.
func capacityLine(c *CapacityInfo) string {
	if c.Level <= 0 {
		return "no load level met the SLO"
	}
	level := fmt.Sprintf("%g concurrent requests", c.Level)
	if c.Search == "request_rate" {
		level = fmt.Sprintf("%.4g req/s", c.Level)
	}
	out := level + " under the SLO"
	if c.OutputThroughput != nil {
		out += fmt.Sprintf(", %.2f tok/s", *c.OutputThroughput)
	}
	if c.OutputThroughputPerGPU != nil {
		out += fmt.Sprintf(" (%.2f tok/s per GPU", *c.OutputThroughputPerGPU)
		if c.GPUs > 0 {
			out += fmt.Sprintf(", %d GPUs", c.GPUs)
		}
		out += ")"
	}
	if c.Goodput != nil {
		out += fmt.Sprintf(", goodput %.4g req/s", *c.Goodput)
	}
	return out
}

func gpuCount(metrics map[string]float64) string {
	if g, ok := metrics["gpus"]; ok && g > 0 {
		return fmt.Sprintf(" (%g GPUs)", g)
	}
	return ""
}

// curveLine renders a curve compactly: "level: p99 TTFT/p99 TPOT ms" per point.
func curveLine(curve []CurvePoint) string {
	parts := make([]string, len(curve))
	for i, c := range curve {
		s := fmt.Sprintf("%g:", c.Level)
		if c.P99TTFTMs != nil {
			s += fmt.Sprintf(" p99 TTFT %.4g ms", *c.P99TTFTMs)
		}
		if c.P99TPOTMs != nil {
			s += fmt.Sprintf(" p99 TPOT %.4g ms", *c.P99TPOTMs)
		}
		if c.SLOMet != nil && !*c.SLOMet {
			s += " (misses the SLO)"
		}
		if c.Error != "" {
			s += " (failed)"
		}
		parts[i] = s
	}
	return strings.Join(parts, "; ")
}

// versionWord is "0.5.5 " for a known version, "" otherwise.
func versionWord(v string) string {
	if v == "" {
		return ""
	}
	return v + " "
}

// adjustedLine lists the values SGLang ran instead of the ones asked:
// "chunked_prefill_size 8192 (asked 4096), mem_fraction_static 0.8".
func adjustedLine(m FrontMember) string {
	parts := make([]string, 0, len(m.Adjusted))
	for _, name := range slices.Sorted(maps.Keys(m.Adjusted)) {
		s := name + " " + study.FormatValue(m.Adjusted[name])
		if asked, ok := m.Parameters[name]; ok {
			s += " (asked " + study.FormatValue(asked) + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
