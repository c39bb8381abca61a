package export

import "errors"

// ErrNothingToExport is returned for a study that has nothing an Optuna
// study could hold (no objectives).
var ErrNothingToExport = errors.New("nothing to export")
