package front

import (
	"bytes"
	"strings"
	"testing"
)

// TestWhatTheServerRanReachesResultsAndFront: the version, model, effective
// and adjusted values a runner recorded are in the trial's record, the front
// member names what SGLang changed, and the console says it.
func TestWhatTheServerRanReachesResultsAndFront(t *testing.T) {
	t.Parallel()
	r := NewReport(testStudy, testSpec(), t0)
	o := complete(1, 20, 2000)
	o.Params["chunked_prefill_size"] = 4096.0
	o.SGLangVersion, o.ModelPathLoaded = "0.5.5", "meta-llama/Llama-3.1-8B-Instruct"
	o.EffectiveParams = map[string]any{"tp_size": 2.0, "chunked_prefill_size": 8192.0, "mem_fraction_static": 0.8, "attention_backend": "fa3"}
	o.AdjustedParams = []string{"chunked_prefill_size", "mem_fraction_static"}
	fold(t, r, o)

	rec := r.Results().Trials[0]
	if rec.SGLangVersion != "0.5.5" || rec.ModelPathLoaded != o.ModelPathLoaded ||
		rec.EffectiveParams["attention_backend"] != "fa3" || len(rec.AdjustedParams) != 2 {
		t.Fatalf("record %+v", rec)
	}
	doc := r.Front()
	if len(doc.ParetoFront) != 1 {
		t.Fatalf("front %+v", doc.ParetoFront)
	}
	m := doc.ParetoFront[0]
	if m.SGLangVersion != "0.5.5" || m.Adjusted["chunked_prefill_size"] != 8192.0 || m.Adjusted["mem_fraction_static"] != 0.8 || len(m.Adjusted) != 2 {
		t.Fatalf("member %+v", m)
	}
	var out bytes.Buffer
	if err := Print(&out, doc); err != nil {
		t.Fatal(err)
	}
	want := "SGLang 0.5.5 ran instead: chunked_prefill_size 8192 (asked 4096), mem_fraction_static 0.8"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("console lacks %q:\n%s", want, out.String())
	}
}
