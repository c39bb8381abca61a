package reporter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sgtune/sgtune/services/reporter/internal/export"
	"github.com/sgtune/sgtune/services/reporter/internal/natsio"
)

// Export formats (sgtune export --format).
const (
	// FormatOptunaJournal is an Optuna JournalStorage file (optuna.load_study,
	// optuna-dashboard); study.best_trials is sgtune's front.
	FormatOptunaJournal = "optuna-journal"
	// FormatCSV is one row per trial (pandas.read_csv).
	FormatCSV = "csv"
	// FormatJSON is the results document (the results file's content).
	FormatJSON = "json"
)

// ExportFormats lists the formats Export writes.
func ExportFormats() []string { return []string{FormatOptunaJournal, FormatCSV, FormatJSON} }

// Export rebuilds a study's results from the outcomes stream (no running
// reporter needed) and writes them to w in format. Study "" means the study
// of pareto/front. Errors wrap ErrUnknownFormat, or those of ReadResults.
func Export(ctx context.Context, js jetstream.JetStream, study, format string, w io.Writer) error {
	switch format {
	case FormatOptunaJournal, FormatCSV, FormatJSON:
	default:
		return fmt.Errorf("%w %q: want %s", ErrUnknownFormat, format, strings.Join(ExportFormats(), ", "))
	}
	doc, err := ReadResults(ctx, js, study)
	if err != nil {
		return err
	}
	switch format {
	case FormatJSON:
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return fmt.Errorf("encode results of %s: %w", doc.StudyName, err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	info, err := natsio.NewStudies(js).Study(ctx, doc.StudyName)
	if err != nil {
		return fmt.Errorf("export %s: %w", doc.StudyName, err)
	}
	if format == FormatCSV {
		return export.CSV(w, doc, info.Spec.Space)
	}
	return export.OptunaJournal(w, doc, info.Spec.Space)
}
