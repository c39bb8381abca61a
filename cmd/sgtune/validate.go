package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/validator"
)

// cmdValidate checks one configuration against the study's rules
// (services/validator Check) and prints the verdict.
func cmdValidate(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", stderr)
	specFile := fs.String("spec", "", "study spec file, YAML or JSON (default: the seed's study)")
	deviceNum := fs.Int("device-num", 0, "GPUs a trial may use: the seed's gpu rule, and the simulated host's GPU count with --gpu-model (default: the spec's device_num, 8)")
	gpu := fs.String("gpu-model", "", "check the hardware rules against one simulated host of this GPU `MODEL` ("+strings.Join(validator.GPUModelNames(), ", ")+")")
	fs.StringVar(gpu, "gpu", "", aliasPrefix+"--gpu-model")
	asJSON := fs.Bool("json", false, "print the verdict as one JSON object")
	// Flags may come before or after the JSON argument.
	var positional []string
	for rest := args; ; {
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}

	badInput := func(err error) error {
		if *asJSON {
			_ = writeJSON(stdout, map[string]any{"valid": false, "bad_input": err.Error()})
		}
		return &exitError{code: 2, err: err}
	}
	if len(positional) != 1 {
		return badInput(fmt.Errorf("want exactly one JSON object of parameters, got %d arguments (see sgtune validate -h)", len(positional)))
	}
	params, err := decodeParams(positional[0])
	if err != nil {
		return badInput(err)
	}
	if *deviceNum < 0 {
		return badInput(fmt.Errorf("--device-num must not be negative, got %d", *deviceNum))
	}
	spec := study.Default()
	if *specFile != "" {
		if spec, err = study.LoadFile(*specFile); err != nil {
			return badInput(err)
		}
	}

	opts := validator.CheckOptions{DeviceNum: *deviceNum}
	var notes []string
	if *gpu != "" {
		n := *deviceNum
		if n == 0 {
			n = spec.DeviceNum
		}
		host, err := validator.SimulatedHost(*gpu, n)
		if err != nil {
			return badInput(err)
		}
		opts.Fleet = []events.RunnerStatus{host}
		if !slices.Contains(spec.Rules.Sets, "hardware") {
			spec.Rules.Sets = append(slices.Clone(spec.Rules.Sets), "hardware")
			notes = append(notes, "--gpu-model turned the hardware rule set on")
		}
	}

	v, err := validator.Check(spec, params, opts)
	if err != nil {
		return badInput(err)
	}
	v.Notes = append(notes, v.Notes...)
	if *asJSON {
		if err := writeJSON(stdout, v); err != nil {
			return err
		}
	} else {
		printVerdict(stdout, v)
	}
	if !v.Valid {
		return &exitError{code: 1, err: fmt.Errorf("INVALID: %s", strings.Join(ruleIDs(v.Rejections), ", "))}
	}
	return nil
}

// decodeParams reads the JSON object of parameters; numbers stay float64, as
// they arrive from the sampler, and the validator normalises them.
func decodeParams(s string) (events.Params, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	var p events.Params
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w (want an object such as '{\"tp_size\": 2}')", err)
	}
	if p == nil {
		return nil, errors.New("malformed JSON: want an object of parameters, got null")
	}
	if dec.More() {
		return nil, errors.New("malformed JSON: extra data after the object")
	}
	return p, nil
}

func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func ruleIDs(rs []events.Rejection) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Rule
	}
	return out
}

// printVerdict writes the verdict for a person.
func printVerdict(w io.Writer, v validator.Verdict) {
	model := v.Model
	if model == "" {
		model = "unknown model shape"
	}
	ctx := fmt.Sprintf("rule sets: %s; model: %s; %d GPU", strings.Join(v.RuleSets, ", "), model, v.GPUs)
	if v.GPUs != 1 {
		ctx += "s"
	}
	if v.Valid {
		fmt.Fprintf(w, "VALID (%s)\n", ctx)
	} else {
		count := fmt.Sprintf("%d rules fail", len(v.Rejections))
		if len(v.Rejections) == 1 {
			count = "1 rule fails"
		}
		fmt.Fprintf(w, "INVALID: %s (%s)\n", count, ctx)
		for _, r := range v.Rejections {
			fmt.Fprintf(w, "  %s [%s]: %s\n      source: %s\n", r.Rule, r.RuleSet, r.Reason, r.Source)
		}
	}
	fmt.Fprintf(w, "canonical config (hash %s):\n", v.CanonicalHash)
	fmt.Fprintf(w, "  model: %s\n  sglang_version: %s\n", v.Canonical.Model, v.Canonical.Version)
	names := make([]string, 0, len(v.Canonical.Args))
	for k := range v.Canonical.Args {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) == 0 {
		fmt.Fprintln(w, "  (every other argument at SGLang's default)")
	}
	for _, k := range names {
		fmt.Fprintf(w, "  %s: %s\n", k, study.FormatValue(v.Canonical.Args[k]))
	}
	if v.Valid {
		fmt.Fprintf(w, "launch flags:\n  %s\n", strings.Join(quoteArgs(v.LaunchArgs), " "))
	}
	for _, h := range v.Hosts {
		fmt.Fprintf(w, "host considered: %s\n", h)
	}
	for _, n := range v.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// quoteArgs quotes the arguments a shell would split (a model path with spaces).
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}
