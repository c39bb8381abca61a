// Package resultsfile writes the results file (the seed's --output JSON,
// extended) atomically: a temporary file in the same directory, synced, then
// renamed over the target, so a reader never sees half a file.
package resultsfile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

// StudyPlaceholder in a path is replaced by the study name.
const StudyPlaceholder = "{study}"

// Writer writes each study's results to Path (with StudyPlaceholder expanded).
type Writer struct {
	Path string
}

// WriteResults implements app.ResultsSink.
func (w Writer) WriteResults(study string, doc front.ResultsDoc) error {
	return Write(strings.ReplaceAll(w.Path, StudyPlaceholder, study), doc)
}

// Write encodes doc as indented ASCII JSON and replaces path with it atomically.
func Write(path string, doc front.ResultsDoc) error {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results of %s: %w", doc.StudyName, err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write results %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write results %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write results %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write results %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write results %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write results %s: %w", path, err)
	}
	return nil
}
