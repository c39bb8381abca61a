package events

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Streams.
const (
	// StreamCandidates keeps every proposal the sampler made (limits retention).
	StreamCandidates = "SGTUNE_CANDIDATES"
	// StreamTrials is the work queue of validated trials waiting for a runner.
	StreamTrials = "SGTUNE_TRIALS"
	// StreamProgress keeps recent progress reports of running trials.
	StreamProgress = "SGTUNE_PROGRESS"
	// StreamOutcomes keeps the one outcome (rejection or result) of every trial: the study's record.
	StreamOutcomes = "SGTUNE_OUTCOMES"
	// StreamDeadLetters keeps messages no consumer could process, with the reason.
	StreamDeadLetters = "SGTUNE_DLQ"
)

// Subject roots; the builders below add the study and trial tokens.
const (
	SubjectCandidatesAll  = "sgtune.candidates.>"
	SubjectTrialsAll      = "sgtune.trials.>"
	SubjectProgressAll    = "sgtune.progress.>"
	SubjectOutcomesAll    = "sgtune.outcomes.>"
	SubjectDeadLettersAll = "sgtune.dlq.>"
)

// KV buckets and keys.
const (
	// BucketPareto holds the Pareto front (fixed: users run `nats kv get pareto front`).
	BucketPareto = "pareto"
	// KeyFront is the key of the most recently updated study's front (fixed).
	KeyFront = "front"
	// BucketStudies holds each study's spec and status, keyed by study name.
	BucketStudies = "sgtune_studies"
	// BucketFleet holds each live runner's inventory, keyed by runner id; entries expire
	// when a runner stops heartbeating.
	BucketFleet = "sgtune_fleet"
	// BucketCanonical remembers which trial first claimed each canonical config,
	// keyed "<study>.<incarnation>.<hash>", so duplicates are never launched twice.
	BucketCanonical = "sgtune_canonical"
)

// Durable consumer names. Never rename one: a new name reprocesses its whole stream.
const (
	// DurableValidator consumes SGTUNE_CANDIDATES.
	DurableValidator = "validator"
	// DurableReporter consumes SGTUNE_OUTCOMES.
	DurableReporter = "reporter"
	// DurableRunnersPrefix + "g<N>" consumes the trials that need N GPUs (see TrialsDurable).
	DurableRunnersPrefix = "runners-"
	// DurableMaxDeliveries is the runners' shared watcher of max-deliveries advisories
	// (stream SGTUNE_ADVISORIES): a trial that used up its deliveries gets a FAILED outcome.
	DurableMaxDeliveries = "runners-max-deliveries"
)

// Event types, the Envelope.Type of each payload.
const (
	TypeCandidateProposed = "candidate.proposed"
	TypeCandidateRejected = "candidate.rejected"
	TypeTrialQueued       = "trial.queued"
	TypeTrialProgress     = "trial.progress"
	TypeTrialResult       = "trial.result"
	TypeDeadLetter        = "dead_letter"
)

// SchemaVersion is the version of every payload in this package.
const SchemaVersion = 1

var studyNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ValidateStudyName reports whether name can be a study name: it becomes a
// subject token and a KV key, so only letters, digits, '_' and '-' are allowed.
func ValidateStudyName(name string) error {
	if !studyNamePattern.MatchString(name) {
		return fmt.Errorf("%w: %q (use 1-128 letters, digits, '_' or '-')", ErrBadStudyName, name)
	}
	return nil
}

// CandidateSubject is where the sampler publishes trial n's proposal.
func CandidateSubject(study string, trial int) string {
	return "sgtune.candidates." + study + "." + strconv.Itoa(trial)
}

// CandidatesOfStudy filters one study's proposals.
func CandidatesOfStudy(study string) string { return "sgtune.candidates." + study + ".*" }

// TrialSubject is where the validator queues trial n, which needs gpus GPUs.
func TrialSubject(study string, gpus, trial int) string {
	return "sgtune.trials." + study + "." + GPUClass(gpus) + "." + strconv.Itoa(trial)
}

// TrialsOfStudy filters one study's queued trials (all GPU classes).
func TrialsOfStudy(study string) string { return "sgtune.trials." + study + ".>" }

// TrialsOfClass filters the queued trials of every study that need gpus GPUs.
func TrialsOfClass(gpus int) string { return "sgtune.trials.*." + GPUClass(gpus) + ".*" }

// TrialsDurable names the shared work-queue consumer for trials needing gpus GPUs.
func TrialsDurable(gpus int) string { return DurableRunnersPrefix + GPUClass(gpus) }

// GPUClass is the subject token of a GPU count: "g1", "g2", ...
func GPUClass(gpus int) string { return "g" + strconv.Itoa(gpus) }

// ProgressSubject is where a runner reports trial n's progress.
func ProgressSubject(study string, trial int) string {
	return "sgtune.progress." + study + "." + strconv.Itoa(trial)
}

// ProgressOfStudy filters one study's progress reports.
func ProgressOfStudy(study string) string { return "sgtune.progress." + study + ".*" }

// OutcomeSubject holds trial n's one outcome.
func OutcomeSubject(study string, trial int) string {
	return "sgtune.outcomes." + study + "." + strconv.Itoa(trial)
}

// OutcomesOfStudy filters one study's outcomes.
func OutcomesOfStudy(study string) string { return "sgtune.outcomes." + study + ".*" }

// DeadLetterSubject is where messages from source (a stream or consumer name) go when
// they cannot be processed.
func DeadLetterSubject(source string) string {
	return "sgtune.dlq." + strings.ToLower(source)
}

// FrontKey is the pareto-bucket key of one study's front.
func FrontKey(study string) string { return KeyFront + "." + study }

// ParseTrialFromSubject returns the study and trial number of any per-trial subject
// built above (the study is the third token and the trial the last).
func ParseTrialFromSubject(subject string) (study string, trial int, err error) {
	tokens := strings.Split(subject, ".")
	if len(tokens) < 4 || tokens[0] != "sgtune" {
		return "", 0, fmt.Errorf("%w: %q", ErrBadSubject, subject)
	}
	n, err := strconv.Atoi(tokens[len(tokens)-1])
	if err != nil || n < 0 {
		return "", 0, fmt.Errorf("%w: %q has no trial number", ErrBadSubject, subject)
	}
	return tokens[2], n, nil
}

// MsgID builds the deterministic Nats-Msg-Id of an event about one trial, so a
// republished event is recognised as a duplicate.
func MsgID(eventType, study string, trial int) string {
	return eventType + ":" + study + ":" + strconv.Itoa(trial)
}
