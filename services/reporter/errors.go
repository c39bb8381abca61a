package reporter

import (
	"errors"

	"github.com/sgtune/sgtune/services/reporter/internal/app"
)

// ErrNoFront is returned (wrapped) by ReadFront when no front is stored yet.
var ErrNoFront = errors.New("no Pareto front stored yet")

// ErrStudyNotFound is returned (wrapped) by WriteResults for a study with no
// entry in the sgtune_studies bucket.
var ErrStudyNotFound = app.ErrStudyNotFound

// ErrInvalidConfig is returned (wrapped) by Config.Validate.
var ErrInvalidConfig = errors.New("invalid reporter config")

// ErrUnknownFormat is returned (wrapped) by Export for a format it does not write.
var ErrUnknownFormat = errors.New("unknown export format")
