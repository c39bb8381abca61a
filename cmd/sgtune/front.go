package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/sgtune/sgtune/services/reporter"
)

// cmdFront prints a study's Pareto front from KV: the same as
// `nats kv get pareto front --raw`, formatted like the seed's console output;
// or serves the live page. With --data-dir it reads a stopped store.
func cmdFront(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("front", stderr)
	studyName := fs.String("study", "", "study `NAME` (default: the study in pareto/front, the latest)")
	fs.StringVar(studyName, "study-name", "", aliasPrefix+"--study")
	asJSON := fs.Bool("json", false, "print the front document as one JSON line")
	output := fs.String("output", "", "also rebuild the full results file from the outcomes stream into `FILE`")
	serve := fs.String("serve", "", "serve the live page on `ADDR` (e.g. 127.0.0.1:8080) until interrupted")
	store := addStoreFlags(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	js, closeStore, err := store.open(ctx, "sgtune-front")
	if err != nil {
		return err
	}
	defer closeStore()
	if *serve != "" {
		url, err := servePage(ctx, *serve, reporter.PageHandler(js, *studyName))
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "sgtune front: serving %s (Ctrl-C to stop)\n", url)
		<-ctx.Done()
		return nil
	}
	doc, err := reporter.ReadFront(ctx, js, *studyName)
	if err != nil {
		return err
	}
	if *output != "" {
		if err := reporter.WriteResults(ctx, js, doc.StudyName, *output); err != nil {
			return err
		}
	}
	if *asJSON {
		b, err := reporter.EncodeFront(doc)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	}
	return reporter.PrintFront(stdout, doc)
}
