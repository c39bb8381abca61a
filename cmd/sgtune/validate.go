package main

import (
	"context"
	"io"
)

// cmdValidate checks one configuration against the study's rules.
func cmdValidate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return usageError("validate: not built yet")
}
