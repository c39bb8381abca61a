package natsx_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/sgtune/sgtune/pkg/natsx"
	"github.com/sgtune/sgtune/pkg/natsx/embedded"
	"github.com/sgtune/sgtune/pkg/natsx/natstest"
)

// freeURL is a loopback address nothing listens on.
func freeURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "nats://" + addr
}

func TestConnectClient(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded server")
	}
	t.Parallel()
	open := natstest.RunServer(t)
	locked, err := embedded.Start(embedded.Options{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), User: "sgtune", Password: "right"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { locked.Shutdown(); locked.WaitForShutdown() })

	tests := []struct {
		name      string
		given     natsx.ConnConfig
		withError error
		mentions  string
	}{
		{name: "reachable", given: natsx.ConnConfig{URL: open.ClientURL()}},
		{name: "right password", given: natsx.ConnConfig{URL: locked.ClientURL(), User: "sgtune", Password: "right"}},
		{name: "nothing listening", given: natsx.ConnConfig{URL: freeURL(t)}, withError: natsx.ErrUnreachable, mentions: "no NATS server answered"},
		{name: "wrong password", given: natsx.ConnConfig{URL: locked.ClientURL(), User: "sgtune", Password: "wrong"}, withError: natsx.ErrAuth, mentions: "NATS_PASSWORD"},
		{name: "no credentials", given: natsx.ConnConfig{URL: locked.ClientURL()}, withError: natsx.ErrAuth, mentions: "refused the credentials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nc, _, err := natsx.ConnectClient(context.Background(), tc.given, 2*time.Second)
			if tc.withError == nil {
				if err != nil {
					t.Fatal(err)
				}
				nc.Close()
				return
			}
			if !errors.Is(err, tc.withError) || !strings.Contains(err.Error(), tc.mentions) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.withError, tc.mentions)
			}
		})
	}
}

// A service's Connect waits for an absent server, but not for one that
// refuses its password: that answer will not change.
func TestConnectFailsFastOnRefusedCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded server")
	}
	t.Parallel()
	locked, err := embedded.Start(embedded.Options{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir(), User: "sgtune", Password: "right"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { locked.Shutdown(); locked.WaitForShutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err = natsx.Connect(ctx, natsx.ConnConfig{URL: locked.ClientURL(), User: "sgtune", Password: "wrong"}, zerolog.Nop())
	if !errors.Is(err, natsx.ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
}
