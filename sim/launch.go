package sim

import "github.com/sgtune/sgtune/sim/model"

// ParseLaunch parses sglang.launch_server flags (a trial's ServerArgs, with
// or without --host/--port) exactly as Run does and returns the model's
// Config and the model preset for --model-path (falling back to the named
// preset, then to the default 8B Llama). Offline users such as the sampler
// benchmark pass the result to model.Evaluate so that a config means the
// same thing offline and on the simulated server. Errors are *UsageError.
func ParseLaunch(args []string, fallbackModel string) (model.Config, model.Model, error) {
	sa, err := parseArgs(newFlagTable(flagSources()...), args)
	if err != nil {
		return model.Config{}, model.Model{}, err
	}
	return sa.config(), pickModel(sa.str("model_path"), fallbackModel), nil
}
