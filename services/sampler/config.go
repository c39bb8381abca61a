package sampler

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sgtune/sgtune/pkg/events"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/sampler/internal/sampling"
)

// Defaults.
const (
	// DefaultClientName is the NATS client name when ConnConfig.Name is empty.
	DefaultClientName = "sgtune-sampler"
	// DefaultFleetPoll is how often the fleet's capacity and the time budget are re-read.
	DefaultFleetPoll = 2 * time.Second
)

// Config configures the sampler service.
type Config struct {
	// NATS says how to reach NATS (SGTUNE_NATS_URL / NATS_URL and the NATS_*
	// credential variables); the client name defaults to "sgtune-sampler".
	NATS natsx.ConnConfig
	// Replicas of the streams and buckets the sampler provisions; 0 or 1 on a
	// single server, 3 on a cluster.
	Replicas int
	// Spec is the study, loaded and validated by the caller (the CLI); default
	// study.Default(). Its StudyName names the study everywhere.
	Spec study.Spec
	// NTrials overrides Spec.NTrials, the study's total budget of benchmarked
	// trials (rejections do not count); 0 keeps the spec's.
	NTrials int
	// Algorithm overrides Spec.Sampler.Algorithm (study.Algorithms:
	// "gp-ehvi", "motpe", "scalarized-tpe", "tpe", "cmaes", "nsga2",
	// "random"); "" keeps the spec's.
	Algorithm string
	// Seed overrides Spec.Sampler.Seed when non-nil.
	Seed *int64
	// Fresh purges everything stored about the study before starting (the
	// seed's --no-load); otherwise the study resumes from its streams.
	Fresh bool
	// AllowSpecChange resumes a study whose stored spec differs additively
	// (parameters gaining values, a larger device_num) from Spec; other
	// differences of the space, objectives, constraints, rules, workload or
	// model are refused either way (SGTUNE_ALLOW_SPEC_CHANGE).
	AllowSpecChange bool
	// OnStandby, when set, is called once if another live sampler owns the
	// study: this one stands by until the study completes (Run returns nil)
	// or the owner's lease expires (it takes the study over).
	OnStandby func(owner events.Lease)
	// MaxInFlight caps the trials proposed without an outcome. 0 (default)
	// follows the fleet: the sum of the Slots of the live runners in the
	// sgtune_fleet bucket, at least 1, plus a sixteenth on a fleet of 16
	// slots or more (a trial queued for the next freed GPU); while no runner
	// is alive nothing is proposed.
	MaxInFlight int
	// FleetPoll is how often the fleet's capacity and the time budget are
	// re-checked when no outcome arrives; default 2s.
	FleetPoll time.Duration
	// Metrics, when set, receives the sampler's Prometheus metrics (see
	// metrics.go: proposal latency, proposals, trials in flight, the study's
	// counters); nil collects none. Pass the service's own registry.
	Metrics prometheus.Registerer
}

// withDefaults fills unset fields.
func (c Config) withDefaults() Config {
	if c.NATS.Name == "" {
		c.NATS.Name = DefaultClientName
	}
	if c.FleetPoll <= 0 {
		c.FleetPoll = DefaultFleetPoll
	}
	return c
}

// Validate checks the configuration, the spec included.
func (c Config) Validate() error {
	if err := c.Spec.Validate(); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	if c.NTrials < 0 {
		return fmt.Errorf("n_trials: must not be negative, got %d", c.NTrials)
	}
	if c.Algorithm != "" {
		if _, _, err := study.ResolveAlgorithm(c.Algorithm, "", len(c.Spec.Objectives)); err != nil {
			return fmt.Errorf("algorithm: %w: %w", sampling.ErrUnknownAlgorithm, err)
		}
	}
	if c.MaxInFlight < 0 {
		return fmt.Errorf("max_in_flight: must not be negative, got %d", c.MaxInFlight)
	}
	if c.Replicas < 0 {
		return fmt.Errorf("replicas: must not be negative, got %d", c.Replicas)
	}
	if c.FleetPoll < 0 {
		return errors.New("fleet_poll: must not be negative")
	}
	return nil
}

// LoadConfig reads the configuration from the environment:
//
//	SGTUNE_NATS_URL / NATS_URL   NATS servers (and NATS_USER, NATS_CREDS, ... see natsx.ConnConfigFromEnv)
//	SGTUNE_SPEC                  study spec file (YAML or JSON); default: the built-in default spec
//	SGTUNE_STUDY                 study name (overrides the spec's study_name)
//	SGTUNE_N_TRIALS              budget of benchmarked trials (overrides the spec's n_trials)
//	SGTUNE_SAMPLER               gp-ehvi | motpe | scalarized-tpe | tpe | cmaes | nsga2 | random (overrides the spec's sampler.algorithm)
//	SGTUNE_SEED                  sampler seed (overrides the spec's sampler.seed)
//	SGTUNE_NO_LOAD               "true": start the study fresh (purge what is stored)
//	SGTUNE_ALLOW_SPEC_CHANGE     "true": resume a study whose spec changed additively
//	SGTUNE_MAX_IN_FLIGHT         cap on trials in flight (0: the fleet's slots)
//	SGTUNE_REPLICAS              stream and bucket replicas
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{NATS: natsx.ConnConfigFromEnv(getenv)}
	if path := getenv("SGTUNE_SPEC"); path != "" {
		spec, err := study.LoadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("SGTUNE_SPEC: %w", err)
		}
		cfg.Spec = spec
	} else {
		cfg.Spec = study.Default()
	}
	if name := getenv("SGTUNE_STUDY"); name != "" {
		if err := events.ValidateStudyName(name); err != nil {
			return Config{}, fmt.Errorf("SGTUNE_STUDY: %w", err)
		}
		cfg.Spec.StudyName = name
	}
	var err error
	if cfg.NTrials, err = intEnv(getenv, "SGTUNE_N_TRIALS"); err != nil {
		return Config{}, err
	}
	if cfg.MaxInFlight, err = intEnv(getenv, "SGTUNE_MAX_IN_FLIGHT"); err != nil {
		return Config{}, err
	}
	if cfg.Replicas, err = intEnv(getenv, "SGTUNE_REPLICAS"); err != nil {
		return Config{}, err
	}
	cfg.Algorithm = getenv("SGTUNE_SAMPLER")
	if v := getenv("SGTUNE_SEED"); v != "" {
		seed, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Config{}, fmt.Errorf("SGTUNE_SEED: want an integer, got %q", v)
		}
		cfg.Seed = &seed
	}
	if v := getenv("SGTUNE_NO_LOAD"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("SGTUNE_NO_LOAD: want true or false, got %q", v)
		}
		cfg.Fresh = b
	}
	if v := getenv("SGTUNE_ALLOW_SPEC_CHANGE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("SGTUNE_ALLOW_SPEC_CHANGE: want true or false, got %q", v)
		}
		cfg.AllowSpecChange = b
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func intEnv(getenv func(string) string, name string) (int, error) {
	v := getenv(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s: want an integer, got %q", name, v)
	}
	return n, nil
}
