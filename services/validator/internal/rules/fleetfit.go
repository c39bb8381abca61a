package rules

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/sgtune/sgtune/pkg/events"
)

// SetFleet names the always-on check that a trial fits some live runner.
const SetFleet = "fleet"

// RuleFleetFit is the id of that check's rejection.
const RuleFleetFit = "fleet.fits_a_runner"

// LargestHost is the most GPUs one host of the fleet has (0 for none).
func LargestHost(fleet []Host) int {
	n := 0
	for _, h := range fleet {
		n = max(n, len(h.GPUs))
	}
	return n
}

// FleetFit checks that a trial needing gpus GPUs fits one live runner: a
// runner never spans hosts, so a trial larger than every runner would wait
// in its GPU class's work queue forever. An empty fleet is not judged (the
// sampler proposes nothing while no runner is live; runners may be
// restarting). It applies whatever rule sets the spec enables.
func FleetFit(gpus int, fleet []Host) (events.Rejection, bool) {
	if len(fleet) == 0 || gpus <= LargestHost(fleet) {
		return events.Rejection{}, true
	}
	return events.Rejection{
		Rule: RuleFleetFit, RuleSet: SetFleet,
		Reason: fmt.Sprintf("the trial needs %d GPUs on one host, but no live runner has that many (largest %d); the live fleet: %s.",
			gpus, LargestHost(fleet), describeFleet(fleet)),
		Source: "sgtune: runners claim only trials that fit their host (KV sgtune_fleet)",
	}, false
}

// UnservableClasses returns the GPU classes (ascending) with queued trials
// (queued[n] > 0) that no runner of a non-empty fleet can run.
func UnservableClasses(queued map[int]int, fleet []Host) []int {
	if len(fleet) == 0 {
		return nil
	}
	largest := LargestHost(fleet)
	var out []int
	for n, count := range queued {
		if count > 0 && n > largest {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// NoRunnerReason is the failure reason of a queued trial of class gpus that
// the fleet can no longer run.
func NoRunnerReason(gpus int, fleet []Host, waited string) string {
	return "no live runner can run a trial needing " + strconv.Itoa(gpus) + " GPUs (largest runner: " +
		strconv.Itoa(LargestHost(fleet)) + " GPUs) for " + waited + "; the live fleet: " + describeFleet(fleet)
}
