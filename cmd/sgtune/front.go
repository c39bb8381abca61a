package main

import (
	"context"
	"fmt"
	"io"

	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/services/reporter"
)

// cmdFront prints a study's Pareto front from KV: the same as
// `nats kv get pareto front --raw`, formatted like the seed's console output.
func cmdFront(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("front", stderr)
	conn := natsx.ConnConfigFromEnv(getenv)
	fs.StringVar(&conn.URL, "nats-url", firstNonEmptyStr(conn.URL, natsx.DefaultURL), "NATS server URL(s)")
	studyName := fs.String("study", "", "study name (default: the study in pareto/front)")
	asJSON := fs.Bool("json", false, "print the front document as one JSON line")
	output := fs.String("output", "", "also rebuild the full results file from the outcomes stream into this path")
	serve := fs.String("serve", "", "serve a page with the front plotted on this address (e.g. 127.0.0.1:8080) until interrupted")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	conn.Name = "sgtune-front"
	nc, js, err := natsx.Connect(ctx, conn, zerolog.Nop())
	if err != nil {
		return err
	}
	defer nc.Close()
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

func firstNonEmptyStr(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
