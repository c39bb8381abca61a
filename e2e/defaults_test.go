package e2e

import (
	"errors"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/validator"
	"github.com/sgtune/sgtune/sim"
	"github.com/sgtune/sgtune/sim/model"
)

// launchRefusal says why sglang-sim, SGLang's stand-in, would refuse to
// launch what the validator let through: an argument check, device binding,
// a model-construction or attention-backend assertion. Out-of-memory at
// launch is not a refusal but a measured outcome of the config (the sampler
// learns it), so it is not counted.
func launchRefusal(args []string, gpus int, hw model.Hardware, preset string) string {
	cfg, m, err := sim.ParseLaunch(args, preset)
	if err != nil {
		return "usage: " + err.Error()
	}
	hw.NumGPUs = gpus // the runner gives the server exactly its GPUs
	_, err = model.NewPlan(cfg, hw, m)
	var le *model.LaunchError
	if errors.As(err, &le) && le.Class == model.ClassCrash {
		return le.Phase + ": " + le.Exception + ": " + le.Message
	}
	return ""
}

// randomConfig draws one value of every parameter of the space.
func randomConfig(rng *rand.Rand, space study.Space) events.Params {
	p := events.Params{}
	for _, ps := range space {
		p[ps.Name] = ps.Values[rng.IntN(len(ps.Values))]
	}
	return p
}

// TestDefaultRules_launch_nothing_SGLang_refuses draws thousands of configs
// from the default (seed's) space, lets the default rule sets judge them
// against one host of each GPU model, and launches every accepted one on
// sglang-sim's launch checks (which model SGLang's own argument checks and
// start-up assertions, written apart from the validator's rules). With the
// default sets, nothing accepted is refused at launch; with the seed's rules
// alone, the same draws waste launches (two-batch overlap on a dense model,
// fa3 on Blackwell, heads tp does not divide, ...): the test can fail.
func TestDefaultRules_launch_nothing_SGLang_refuses(t *testing.T) {
	t.Parallel()
	models := []struct{ path, preset string }{
		{"meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"}, // the default study's model
		{"Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b"},           // 28 heads, 4 KV heads
		{"Qwen/Qwen3-30B-A3B", "qwen3-30b-a3b"},              // MoE
		{"deepseek-ai/DeepSeek-V2-Lite", "deepseek-v2-lite"}, // MoE with MLA
	}
	gpus := []string{"H100", "A100-80G", "L40S", "B200"}
	draws := 1500
	if testing.Short() {
		draws = 300
	}
	for _, mdl := range models {
		for _, g := range gpus {
			t.Run(mdl.preset+"/"+g, func(t *testing.T) {
				t.Parallel()
				hw, ok := model.GPUPreset(g)
				if !ok {
					t.Fatalf("no GPU preset %s", g)
				}
				host, err := validator.SimulatedHost(g, 8)
				if err != nil {
					t.Fatal(err)
				}
				spec := study.Default()
				spec.Model.Path, spec.Model.Preset = mdl.path, mdl.preset
				seedOnly := spec
				seedOnly.Rules.Sets = []string{"seed"}
				opts := validator.CheckOptions{Fleet: []events.RunnerStatus{host}}
				rng := rand.New(rand.NewPCG(7, uint64(len(mdl.preset)*31+len(g))))
				launched, wasted := map[string]int{}, map[string]int{}
				for range draws {
					p := randomConfig(rng, spec.Space)
					for name, sp := range map[string]study.Spec{"default": spec, "seed": seedOnly} {
						v, err := validator.Check(sp, p, opts)
						if err != nil {
							t.Fatalf("Check(%v): %v", p, err)
						}
						if !v.Valid {
							continue
						}
						launched[name]++
						if why := launchRefusal(v.LaunchArgs, v.GPUs, hw, mdl.preset); why != "" {
							wasted[name]++
							if name == "default" {
								t.Errorf("the default rules let through a config SGLang refuses at launch:\n  %s\n  %s",
									strings.Join(v.LaunchArgs, " "), why)
							}
						}
					}
				}
				if launched["default"] == 0 {
					t.Fatalf("no draw was accepted by the default rules (%d draws): the test checks nothing", draws)
				}
				t.Logf("%d draws: default rules launch %d, all accepted by SGLang's checks; seed rules alone launch %d, of which %d refused",
					draws, launched["default"], launched["seed"], wasted["seed"])
			})
		}
	}
}

// TestSeedRulesAlone_waste_launches is the control: the seed's rules alone
// let SGLang-refused configs through on the default model and an H100 host
// (at least two-batch overlap on the dense Llama), so the check above is
// not vacuous.
func TestSeedRulesAlone_waste_launches(t *testing.T) {
	t.Parallel()
	hw, _ := model.GPUPreset("H100")
	spec := study.Default()
	spec.Rules.Sets = []string{"seed"}
	rng := rand.New(rand.NewPCG(1, 2))
	refusals := map[string]int{}
	for range 400 {
		v, err := validator.Check(spec, randomConfig(rng, spec.Space), validator.CheckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !v.Valid {
			continue
		}
		if why := launchRefusal(v.LaunchArgs, v.GPUs, hw, "llama-3.1-8b"); why != "" {
			refusals[strings.SplitN(why, ":", 3)[2]]++
		}
	}
	if len(refusals) == 0 {
		t.Fatal("the seed's rules alone wasted no launch: the default-rules test above cannot tell them apart")
	}
	kinds := make([]string, 0, len(refusals))
	for k := range refusals {
		kinds = append(kinds, strings.TrimSpace(k))
	}
	sort.Strings(kinds)
	t.Logf("seed rules alone, refused at launch: %v", refusals)
	if !strings.Contains(strings.Join(kinds, "\n"), "Two-batch overlap") {
		t.Errorf("expected two-batch overlap on the dense model among the refusals, got %v", kinds)
	}
}
