package embedded_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// The shipped nats-server configs (the official image, sgtune's
// nats-server image, the cluster and TLS overrides) fsync every write, as
// sgtune nats does by default.
func TestShippedConfigs_sync_every_write(t *testing.T) {
	for name, v := range map[string]string{
		"NATS_USER": "sgtune", "NATS_PASSWORD": "pw", "NATS_CLUSTER_USER": "route", "NATS_CLUSTER_PASSWORD": "rpw",
		"NATS_SERVER_NAME": "n1", "NATS_ROUTES": "[nats-route://route:rpw@127.0.0.1:6222]",
	} {
		t.Setenv(name, v)
	}
	files, err := filepath.Glob("../../../deploy/nats/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs found: %v", err)
	}
	for _, f := range files {
		// The TLS block needs certificates this test does not have: check
		// the rest of the file.
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := regexp.MustCompile(`(?s)\ntls \{.*?\n\}`).ReplaceAllString(string(data), "")
		tmp := filepath.Join(t.TempDir(), filepath.Base(f))
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		opts, err := server.ProcessConfigFile(tmp)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !opts.SyncAlways {
			t.Errorf("%s does not set jetstream.sync_interval: always", filepath.Base(f))
		}
	}
}
