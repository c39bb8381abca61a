package export

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/sgtune/sgtune/pkg/study"
	"github.com/sgtune/sgtune/services/reporter/internal/front"
)

// CSV writes one row per trial: trial_number, state, feasible,
// pareto_optimal, each objective (named as in the spec, in its unit), each
// parameter (the spec's order, then any other a trial ran), the headline
// metrics, failure_class and reason. A parameter set to None reads "None";
// a cell is empty where a trial has no such value. Numbers are written in
// full precision, so pandas.read_csv gives float columns.
func CSV(w io.Writer, doc front.ResultsDoc, space study.Space) error {
	choices := newParamChoices(space, doc.Trials)
	metrics := front.HeadlineMetrics()
	header := []string{"trial_number", "state", "feasible", "pareto_optimal"}
	for _, o := range doc.Objectives {
		header = append(header, o.Name)
	}
	var paramCols, metricCols []string
	for _, name := range choices.names {
		if !slices.Contains(header, name) {
			paramCols = append(paramCols, name)
			header = append(header, name)
		}
	}
	for _, m := range metrics {
		if !slices.Contains(header, m) {
			metricCols = append(metricCols, m)
			header = append(header, m)
		}
	}
	header = append(header, "failure_class", "reason")

	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	for _, t := range doc.Trials {
		row := make([]string, 0, len(header))
		row = append(row, strconv.Itoa(t.TrialNumber), t.State, strconv.FormatBool(t.Feasible), strconv.FormatBool(t.ParetoOptimal))
		for _, o := range doc.Objectives {
			row = append(row, number(t.Objectives, o.Name))
		}
		for _, name := range paramCols {
			v, ok := t.Parameters[name]
			if !ok {
				row = append(row, "")
				continue
			}
			row = append(row, study.FormatValue(v))
		}
		for _, name := range metricCols {
			row = append(row, number(t.Metrics, name))
		}
		row = append(row, t.FailureClass, t.Reason)
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

func number(m map[string]float64, key string) string {
	v, ok := m[key]
	if !ok {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
