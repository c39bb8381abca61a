package reporter

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/reporter/internal/resultsfile"
)

// DefaultOutput is the seed's results file name, the default of the CLI's --output.
const DefaultOutput = "optuna_results.json"

// Config configures Run.
type Config struct {
	// NATS says how to reach NATS (see natsx.ConnConfigFromEnv); Name defaults
	// to "sgtune-reporter".
	NATS natsx.ConnConfig
	// Replicas of the streams and buckets provisioned at start: 1 (default) on a
	// single server, 3 on a cluster.
	Replicas int
	// Output is the results file, rewritten atomically after every change;
	// "{study}" in it is replaced by the study name. Empty (the default): no file.
	Output string
	// Quiet suppresses the console summary Run prints when it stops.
	Quiet bool
	// Stdout receives the console summary; nil means os.Stdout.
	Stdout io.Writer
	// Metrics, when set, receives the reporter's Prometheus metrics (see
	// metrics.go: trials by state and class, rejections by rule, front size,
	// hypervolume, outcome-to-front lag); nil collects none. Pass the
	// service's own registry, never the global default.
	Metrics prometheus.Registerer
}

// LoadConfig reads the configuration from the environment:
//
//	SGTUNE_NATS_URL / NATS_URL and the other NATS_* variables (natsx.ConnConfigFromEnv)
//	SGTUNE_REPLICAS          stream and bucket replicas (default 1)
//	SGTUNE_REPORTER_OUTPUT   results file path (default: none)
//	SGTUNE_REPORTER_QUIET    "true" to skip the console summary
//
// It returns the validated config.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{NATS: natsx.ConnConfigFromEnv(getenv), Output: getenv("SGTUNE_REPORTER_OUTPUT")}
	if v := getenv("SGTUNE_REPLICAS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return Config{}, fmt.Errorf("%w: SGTUNE_REPLICAS=%q is not a number", ErrInvalidConfig, v)
		}
		cfg.Replicas = n
	}
	if v := getenv("SGTUNE_REPORTER_QUIET"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("%w: SGTUNE_REPORTER_QUIET=%q is not true or false", ErrInvalidConfig, v)
		}
		cfg.Quiet = b
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c *Config) setDefaults() {
	if c.NATS.Name == "" {
		c.NATS.Name = "sgtune-reporter"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
}

// Validate checks the config: replicas between 1 and 5 (0 means the default),
// and an Output whose directory exists.
func (c Config) Validate() error {
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("%w: replicas must be 1 to 5, got %d", ErrInvalidConfig, c.Replicas)
	}
	if c.Output != "" {
		dir := filepath.Dir(strings.ReplaceAll(c.Output, resultsfile.StudyPlaceholder, "x"))
		st, err := os.Stat(dir)
		if err != nil || !st.IsDir() {
			return fmt.Errorf("%w: output %s: directory %s does not exist", ErrInvalidConfig, c.Output, dir)
		}
	}
	return nil
}
