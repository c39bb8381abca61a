// Package export writes a study's results in the formats users' own tools
// read: an Optuna journal (optuna.load_study over JournalStorage, and
// optuna-dashboard), CSV (pandas, spreadsheets). It is pure: it turns a
// front.ResultsDoc and the study's search space into bytes on an io.Writer.
//
// # How sgtune's trials map onto Optuna's
//
// Optuna's study.best_trials is the non-dominated set of its COMPLETE trials;
// Optuna 3.1 ignores constraints there. So that best_trials is exactly
// sgtune's Pareto front, only the trials sgtune's front is chosen from are
// COMPLETE (with their objective values, in the spec's order and scale):
//
//	COMPLETE, feasible           COMPLETE, values = objectives
//	COMPLETE, missed an SLO      FAIL (the measured objectives and the violated
//	                             SLOs are user attributes)
//	FAILED (oom, crash, ...)     FAIL
//	REJECTED by the validator    PRUNED (the rules and reasons are user attributes)
//	PRUNED / stopped early       PRUNED
//	repeat run (sampler.repeats) PRUNED: its result is folded into the first
//	                             run's mean, which is the COMPLETE entry
//	no outcome yet (in flight)   RUNNING
//
// Every trial keeps sgtune's number as Optuna's (gaps are filled with
// RUNNING trials) and in the user attribute sgtune_trial, and carries every
// metric as a user attribute. Parameters are categorical distributions over
// the spec's value lists (None is a choice), plus any value a trial ran that
// the list lacks (the baseline's defaults).
package export
