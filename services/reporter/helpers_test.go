package reporter_test

import (
	"encoding/json"
	"os"
	"testing"
)

func jsonOf(v any) ([]byte, error) { return json.Marshal(v) }

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
