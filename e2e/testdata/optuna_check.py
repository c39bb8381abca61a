"""Loads an sgtune export in Optuna itself and checks it against the results
document sgtune wrote: python3 optuna_check.py JOURNAL STUDY RESULTS.json [CSV]

Prints one JSON line with what it found; exits non-zero on any mismatch.
Works with Optuna 3.1+ (JournalFileStorage) and 4.x (JournalFileBackend)."""
import json
import sys
import warnings

import optuna

warnings.simplefilter("ignore")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def storage_for(path):
    storages = optuna.storages
    try:
        from optuna.storages.journal import JournalFileBackend  # Optuna 4.x
        backend = JournalFileBackend(path)
    except ImportError:
        backend = storages.JournalFileStorage(path)  # Optuna 3.1 - 3.x
    return storages.JournalStorage(backend)


def fail(msg):
    print(json.dumps({"ok": False, "error": msg}))
    sys.exit(1)


def main():
    journal, name, results_path = sys.argv[1:4]
    csv_path = sys.argv[4] if len(sys.argv) > 4 else None
    with open(results_path) as f:
        results = json.load(f)
    study = optuna.load_study(study_name=name, storage=storage_for(journal))

    want_dirs = [o["direction"] for o in results["objectives"]]
    got_dirs = [d.name.lower() for d in study.directions]
    if got_dirs != want_dirs:
        fail(f"directions {got_dirs}, want {want_dirs}")

    trials = study.trials
    by_number = {t.number: t for t in trials}
    for rec in results["trials"]:
        n = rec["trial_number"]
        t = by_number.get(n)
        if t is None:
            fail(f"trial {n} missing")
        if t.user_attrs.get("sgtune_trial") != n:
            fail(f"trial {n}: sgtune_trial {t.user_attrs.get('sgtune_trial')}")
        state = t.state.name
        if rec["state"] == "FAILED" and state != "FAIL":
            fail(f"trial {n}: failed trial exported as {state}")
        if rec["state"] == "REJECTED" and state != "PRUNED":
            fail(f"trial {n}: rejected trial exported as {state}")
        if rec["state"] == "COMPLETE" and rec.get("feasible") and rec.get("repeat_of") is None and state != "COMPLETE":
            fail(f"trial {n}: feasible trial exported as {state}")
        for metric, value in (rec.get("metrics") or {}).items():
            if t.user_attrs.get(metric) != value:
                fail(f"trial {n}: metric {metric} = {t.user_attrs.get(metric)}, want {value}")
        for param, value in (rec.get("parameters") or {}).items():
            got = t.params.get(param, "<missing>")
            if got != value or type(got) is not type(value):
                if not (isinstance(value, float) and got == value):
                    fail(f"trial {n}: param {param} = {got!r}, want {value!r}")
            dist = t.distributions[param]
            if not isinstance(dist, optuna.distributions.CategoricalDistribution):
                fail(f"trial {n}: {param} has {type(dist).__name__}")
        if state == "COMPLETE":
            want = [rec["objectives"][o["name"]] for o in results["objectives"]]
            if rec.get("pareto_optimal"):
                member = next(m for m in results["pareto_front"] if m["trial_number"] == n)
                want = [member["objectives"][o["name"]] for o in results["objectives"]]
            if t.values != want:
                fail(f"trial {n}: values {t.values}, want {want}")

    best = sorted(t.user_attrs["sgtune_trial"] for t in study.best_trials)
    front = sorted(m["trial_number"] for m in results["pareto_front"])
    if best != front:
        fail(f"best_trials {best}, sgtune's front {front}")

    out = {"ok": True, "optuna": optuna.__version__, "trials": len(trials), "best_trials": best,
           "states": sorted({t.state.name for t in trials})}
    if csv_path:
        try:
            import pandas
            frame = pandas.read_csv(csv_path)
            rows, reader = len(frame), "pandas " + pandas.__version__
            columns = list(frame.columns)
            numbers = [int(v) for v in frame["trial_number"]]
        except ImportError:
            import csv
            with open(csv_path, newline="") as f:
                table = list(csv.DictReader(f))
            rows, reader = len(table), "csv module"
            columns = list(table[0].keys()) if table else []
            numbers = [int(r["trial_number"]) for r in table]
        if rows != len(results["trials"]):
            fail(f"csv has {rows} rows, want {len(results['trials'])}")
        if numbers != [r["trial_number"] for r in results["trials"]]:
            fail("csv trial numbers differ")
        for col in ["trial_number", "state"] + [o["name"] for o in results["objectives"]] + ["reason"]:
            if col not in columns:
                fail(f"csv lacks column {col}")
        out["csv"] = {"rows": rows, "columns": len(columns), "reader": reader}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
