package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgtune/sgtune/pkg/natsx/embedded"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

// Every subcommand's -h starts with one line saying what it does, then its
// arguments; older flag spellings still work but are not listed.
func TestEveryCommandHelp(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, nil, c.name, "-h")
			help := out + errOut
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, help)
			}
			first, _, _ := strings.Cut(help, "\n")
			if want := "sgtune " + c.name + ": " + c.summary; first != want || c.summary == "" {
				t.Fatalf("first line %q, want %q", first, want)
			}
			if c.name != "sim" && !strings.Contains(help, "usage: sgtune "+c.name) {
				t.Fatalf("no usage line:\n%s", help)
			}
			if c.name == "sim" && !strings.Contains(help, "--model-path") {
				t.Fatalf("sim help lacks launch_server's flags:\n%s", help)
			}
			if strings.Contains(help, "alias of") || strings.Contains(help, "--gpu ") {
				t.Fatalf("help lists an alias:\n%s", help)
			}
		})
	}
	code, out, _ := runCLI(t, nil, "-h")
	for _, c := range commands() {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("sgtune -h does not list %s", c.name)
		}
	}
	if code != 0 {
		t.Fatalf("sgtune -h: exit %d", code)
	}
}

// One name per idea: a GPU model is --gpu-model wherever a command takes one.
func TestGPUModelFlagEverywhere(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"up", "runner", "gpus", "validate"} {
		_, out, errOut := runCLI(t, nil, name, "-h")
		if !strings.Contains(out+errOut, "--gpu-model MODEL") && !strings.Contains(out+errOut, "--gpu-model string") {
			t.Errorf("sgtune %s -h has no --gpu-model:\n%s", name, out+errOut)
		}
	}
	// The old spelling of validate still works.
	code, out, errOut := runCLI(t, nil, "validate", "--gpu", "A10", `{"tp_size": 1}`)
	if code != 0 || !strings.Contains(out, "VALID") {
		t.Fatalf("validate --gpu: exit %d\n%s%s", code, out, errOut)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, _ := runCLI(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "sgtune ") || !strings.Contains(out, "go1.") {
			t.Fatalf("%v: exit %d, %q", args, code, out)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Clients fail within a few seconds with a clear message when NATS is not
// there or refuses them, instead of waiting 30 s for "context canceled".
func TestClientsFailFastWithoutNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded server")
	}
	t.Parallel()
	locked, err := embedded.Start(embedded.Options{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), User: "sgtune", Password: "right"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { locked.Shutdown(); locked.WaitForShutdown() })
	nowhere := "nats://" + freeAddr(t)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"front, nothing listening", nil, []string{"front", "--nats-url", nowhere}, []string{"no NATS server answered at " + nowhere, "--data-dir"}},
		{"export, nothing listening", nil, []string{"export", "--format", "csv", "--nats-url", nowhere}, []string{"no NATS server answered"}},
		{"front, NATS_URL from the environment", map[string]string{"NATS_URL": nowhere}, []string{"front"}, []string{"no NATS server answered at " + nowhere}},
		{"front, wrong password", map[string]string{"NATS_USER": "sgtune", "NATS_PASSWORD": "wrong"}, []string{"front", "--nats-url", locked.ClientURL()},
			[]string{"refused the credentials", "NATS_PASSWORD"}},
		{"export, no credentials", nil, []string{"export", "--format", "json", "--nats-url", locked.ClientURL()}, []string{"refused the credentials"}},
		{"up, nothing listening", nil, []string{"up", "--gpus", "2", "--nats-url", nowhere, "--data-dir", t.TempDir(), "--quiet"}, []string{"no NATS server answered at " + nowhere}},
		{"up, wrong password", map[string]string{"NATS_USER": "sgtune", "NATS_PASSWORD": "wrong"},
			[]string{"up", "--gpus", "2", "--nats-url", locked.ClientURL(), "--data-dir", t.TempDir(), "--quiet"}, []string{"refused the credentials"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			code, _, errOut := runCLI(t, tc.env, tc.args...)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %s", took) // the limit is DefaultClientTimeout (3 s); 10 s leaves room for a loaded machine
			}
			if code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
}

func TestExportUsageErrors(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no format", []string{"export", "--data-dir", empty}, 2, "--format is required"},
		{"unknown format", []string{"export", "--format", "sqlite", "--data-dir", empty}, 2, `--format "sqlite": want optuna-journal, csv, json`},
		{"server and store", []string{"export", "--format", "csv", "--data-dir", empty, "--nats-url", "nats://127.0.0.1:1"}, 2, "exclude each other"},
		{"no store in the directory", []string{"front", "--data-dir", empty}, 1, "no JetStream store in " + empty},
		{"stray argument", []string{"front", "--data-dir", empty, "extra"}, 2, "unexpected arguments"},
		{"sampler with no trials", []string{"sampler", "--n-trials", "0"}, 2, "--n-trials must be at least 1, got 0"},
		{"sampler with negative trials", []string{"sampler", "--n-trials", "-1"}, 2, "--n-trials must be at least 1, got -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, errOut := runCLI(t, nil, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}

// The front of a stopped store is read from a copy: nothing in the store changes.
func TestFrontReadsAStoppedStoreReadOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded server")
	}
	t.Parallel()
	dir := t.TempDir()
	srv, err := embedded.Start(embedded.Options{Host: "127.0.0.1", Port: -1, StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	// A store with the topology but no study: the front is missing, and says so.
	code, _, errOut := runCLI(t, nil, "front", "--nats-url", srv.ClientURL())
	srv.Shutdown()
	srv.WaitForShutdown()
	if code != 1 {
		t.Fatalf("front on an empty server: exit %d %s", code, errOut)
	}
	before := snapshot(t, dir)
	code, _, errOut = runCLI(t, nil, "front", "--data-dir", dir)
	if code != 1 || !strings.Contains(errOut, "no Pareto front stored yet") {
		t.Fatalf("front --data-dir: exit %d %s", code, errOut)
	}
	if after := snapshot(t, dir); after != before {
		t.Fatalf("the store changed:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshot lists every file under dir with its size and modification time.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %d;", p, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
