package natsx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultClientTimeout bounds how long a command-line client (sgtune front,
// sgtune export) waits for NATS before it gives up.
const DefaultClientTimeout = 3 * time.Second

// ConnectClient opens one connection for a short-lived client: unlike
// Connect it does not retry a failed first attempt, so an unreachable server
// fails within timeout (DefaultClientTimeout when 0) with an error wrapping
// ErrUnreachable, and refused credentials fail at once with ErrAuth. Once
// connected it reconnects like Connect for as long as the client runs.
func ConnectClient(ctx context.Context, cfg ConnConfig, timeout time.Duration) (*nats.Conn, jetstream.JetStream, error) {
	url := cfg.URL
	if url == "" {
		url = DefaultURL
	}
	if timeout <= 0 {
		timeout = DefaultClientTimeout
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
	}
	auth, err := authOptions(cfg)
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, auth...)
	type dialed struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		nc, err := nats.Connect(url, opts...)
		done <- dialed{nc, err}
	}()
	var d dialed
	select {
	case d = <-done:
	case <-ctx.Done():
		// The dial gives up within timeout; close what it may still open.
		go func() {
			if d := <-done; d.nc != nil {
				d.nc.Close()
			}
		}()
		return nil, nil, ctx.Err()
	}
	if d.err != nil {
		return nil, nil, clientError(redactURL(url), timeout, d.err)
	}
	js, err := jetstream.New(d.nc)
	if err != nil {
		d.nc.Close()
		return nil, nil, fmt.Errorf("open JetStream: %w", err)
	}
	if cfg.Health != nil {
		cfg.Health.watch(d.nc)
	}
	return d.nc, js, nil
}

// clientError names what went wrong with a first connection in words.
func clientError(url string, timeout time.Duration, err error) error {
	if isAuthError(err) {
		return fmt.Errorf("%w: NATS at %s refused the credentials (%v): check NATS_USER and NATS_PASSWORD (or NATS_PASSWORD_FILE, NATS_TOKEN, NATS_CREDS)", ErrAuth, url, err)
	}
	return fmt.Errorf("%w: no NATS server answered at %s within %s (%v)", ErrUnreachable, url, timeout, err)
}

// isAuthError reports whether err is the server refusing the client's credentials.
func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired)
}
