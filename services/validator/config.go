package validator

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/validator/internal/natsio"
)

// ErrInvalidConfig is returned (wrapped, naming the field) for a bad Config.
var ErrInvalidConfig = errors.New("invalid validator config")

// Config configures the validator service. Zero values take the defaults in
// parentheses (Defaults).
type Config struct {
	// NATS says how to reach NATS (natsx.ConnConfigFromEnv; client name "sgtune-validator").
	NATS natsx.ConnConfig
	// DeviceNum, when > 0, overrides every study's device_num for the seed's
	// gpu rule (the seed's --device-num); 0 uses the spec's. Env SGTUNE_DEVICE_NUM.
	DeviceNum int
	// Workers is how many candidates are validated at once (4). Env SGTUNE_VALIDATOR_WORKERS.
	Workers int
	// Replicas of the streams and buckets the validator provisions: 1 on a
	// single server, 3 on a cluster (1). Env SGTUNE_NATS_REPLICAS.
	Replicas int
	// FleetRefresh is how often the live fleet is re-read for the hardware
	// rules (5s). Env SGTUNE_FLEET_REFRESH (a Go duration).
	FleetRefresh time.Duration
	// StudyRetry is how long a candidate waits before it is retried when its
	// study is not in the sgtune_studies bucket yet (2s).
	StudyRetry time.Duration
	// FleetWait is how long a candidate of a study with the hardware rule set
	// waits inside the validator for the first live runner when none is alive
	// (10m). The wait sends InProgress every 10 s, so it spends no delivery;
	// after it the candidate is redelivered in 30 s, and after MaxDeliver (5)
	// such rounds it is dead-lettered. Env SGTUNE_FLEET_WAIT (a Go duration).
	FleetWait time.Duration
	// Metrics, when set, receives the validator's Prometheus metrics (see
	// metrics.go: validation latency by result); nil collects none. Pass the
	// service's own registry.
	Metrics prometheus.Registerer
	// NoRunnerWait is how long queued trials of a GPU class that no live
	// runner can run (the fleet shrank after they were queued) wait before
	// they are recorded as failed (class no-runner) and removed (2m). A
	// warning names the class at once. Env SGTUNE_NO_RUNNER_WAIT.
	NoRunnerWait time.Duration
}

// Defaults fills zero fields with their defaults.
func (c Config) Defaults() Config {
	if c.NATS.Name == "" {
		c.NATS.Name = "sgtune-validator"
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.FleetRefresh == 0 {
		c.FleetRefresh = 5 * time.Second
	}
	if c.StudyRetry == 0 {
		c.StudyRetry = 2 * time.Second
	}
	if c.FleetWait == 0 {
		c.FleetWait = natsio.DefaultFleetWait
	}
	if c.NoRunnerWait == 0 {
		c.NoRunnerWait = natsio.DefaultSweepWait
	}
	return c
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	switch {
	case c.DeviceNum < 0:
		return fmt.Errorf("%w: device_num must not be negative, got %d", ErrInvalidConfig, c.DeviceNum)
	case c.Workers < 1:
		return fmt.Errorf("%w: workers must be at least 1, got %d", ErrInvalidConfig, c.Workers)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("%w: replicas must be within 1..5, got %d", ErrInvalidConfig, c.Replicas)
	case c.FleetRefresh < 0:
		return fmt.Errorf("%w: fleet refresh must not be negative, got %s", ErrInvalidConfig, c.FleetRefresh)
	case c.StudyRetry < 0:
		return fmt.Errorf("%w: study retry must not be negative, got %s", ErrInvalidConfig, c.StudyRetry)
	case c.FleetWait < 0:
		return fmt.Errorf("%w: fleet wait must not be negative, got %s", ErrInvalidConfig, c.FleetWait)
	}
	return nil
}

// LoadConfig reads the configuration from the environment (see the package
// doc), applies defaults and validates it.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{NATS: natsx.ConnConfigFromEnv(getenv)}
	ints := []struct {
		env string
		dst *int
	}{
		{"SGTUNE_DEVICE_NUM", &cfg.DeviceNum},
		{"SGTUNE_VALIDATOR_WORKERS", &cfg.Workers},
		{"SGTUNE_NATS_REPLICAS", &cfg.Replicas},
	}
	for _, f := range ints {
		if s := getenv(f.env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return Config{}, fmt.Errorf("%w: %s: want an integer, got %q", ErrInvalidConfig, f.env, s)
			}
			*f.dst = n
		}
	}
	durs := []struct {
		env string
		dst *time.Duration
	}{
		{"SGTUNE_FLEET_REFRESH", &cfg.FleetRefresh},
		{"SGTUNE_FLEET_WAIT", &cfg.FleetWait},
		{"SGTUNE_NO_RUNNER_WAIT", &cfg.NoRunnerWait},
	}
	for _, f := range durs {
		if s := getenv(f.env); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil {
				return Config{}, fmt.Errorf("%w: %s: want a duration like 5s, got %q", ErrInvalidConfig, f.env, s)
			}
			*f.dst = d
		}
	}
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
