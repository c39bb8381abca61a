package events

import (
	"strconv"
	"time"
)

// BucketLeases holds short-lived claims, each refreshed by its holder and
// expiring (the bucket's TTL, 30 s by default) when the holder stops
// refreshing it:
//
//	trial.<study>.<trial>   the runner running a trial (taken before launching, released after the ack)
//	study.<study>           the sampler that owns a study (one sampler per study)
//	reporter.<instance>     a live reporter (so a joining `sgtune up` knows whether to start one)
//	stop.<study>.<trial>    a request to stop a running trial (StopRequest); its runner watches stop.>
const BucketLeases = "sgtune_leases"

// Lease holder kinds.
const (
	LeaseRunner    = "runner"
	LeaseSampler   = "sampler"
	LeaseReporter  = "reporter"
	LeaseValidator = "validator"
)

// Lease is the value of a key in BucketLeases.
type Lease struct {
	// Kind is LeaseRunner, LeaseSampler, LeaseReporter or LeaseValidator.
	Kind string `json:"kind"`
	// Holder names the holder: a runner id, or the process for the other kinds.
	Holder string `json:"holder"`
	// Instance is unique per process (host, process id and a random suffix):
	// a runner restarted with the same id has another instance, so its old
	// leases are recognised as stale at once.
	Instance string `json:"instance"`
	Host     string `json:"host"`
	PID      int    `json:"pid"`
	// Token is unique per acquisition, so a holder whose Create reply was
	// lost recognises its own lease.
	Token string `json:"token"`
	// Study, Trial and Incarnation name what a trial lease is about.
	Study       string `json:"study,omitempty"`
	Trial       int    `json:"trial,omitempty"`
	Incarnation string `json:"incarnation,omitempty"`
	// GPUs a trial runs on (indices on Host).
	GPUs       []int     `json:"gpus,omitempty"`
	AcquiredAt time.Time `json:"acquired_at"`
	RenewedAt  time.Time `json:"renewed_at"`
}

// StopRequest asks the runner of a trial to stop it (early stopping). The
// runner cancels the trial, stops its server and records the outcome with
// Reason.
type StopRequest struct {
	Study  string `json:"study"`
	Trial  int    `json:"trial"`
	Reason string `json:"reason"`
	// By names who asked (e.g. "sampler").
	By string `json:"by,omitempty"`
	// EarlyStop marks the sampler's early stopping: the trial is recorded
	// as StatePruned with what it measured before the stop, not as a
	// failure.
	EarlyStop   bool      `json:"early_stop,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
}

// TrialLeaseKey is the BucketLeases key of a trial's lease.
func TrialLeaseKey(study string, trial int) string {
	return "trial." + study + "." + strconv.Itoa(trial)
}

// StudyLeaseKey is the BucketLeases key of a study's ownership lease.
func StudyLeaseKey(study string) string { return "study." + study }

// ReporterLeaseKey is the BucketLeases key of a live reporter.
func ReporterLeaseKey(instance string) string { return "reporter." + instance }

// StopKey is the BucketLeases key of a request to stop a running trial.
func StopKey(study string, trial int) string { return "stop." + study + "." + strconv.Itoa(trial) }

// StopKeysAll matches every stop request (a KV watch pattern).
const StopKeysAll = "stop.>"

// ReporterKeysAll matches every live reporter's key.
const ReporterKeysAll = "reporter.*"
