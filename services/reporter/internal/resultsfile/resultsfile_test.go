package resultsfile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

func TestWriteReplacesAtomically(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := Writer{Path: filepath.Join(dir, "results-{study}.json")}
	for n := range 2 {
		doc := front.ResultsDoc{FrontDoc: front.FrontDoc{StudyName: "s1", NTrials: n}, Trials: []front.TrialRecord{}, HypervolumeHistory: []front.HVPoint{}}
		if err := w.WriteResults("s1", doc); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "results-s1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		StudyName string `json:"study_name"`
		NTrials   int    `json:"n_trials"`
		Trials    []any  `json:"trials"`
	}
	if err := json.Unmarshal(data, &got); err != nil || got.StudyName != "s1" || got.NTrials != 1 || got.Trials == nil {
		t.Fatalf("got %+v (%v) from %s", got, err, data)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestWriteMissingDirectory(t *testing.T) {
	t.Parallel()
	if err := Write(filepath.Join(t.TempDir(), "no", "such", "dir.json"), front.ResultsDoc{}); err == nil {
		t.Fatal("want an error")
	}
}
