package natsx

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ConnConfig says how to reach NATS. Secrets come from files or the
// environment, never from a container's command line.
type ConnConfig struct {
	// URL is a comma-separated list of server URLs; default nats://127.0.0.1:4222.
	URL string
	// Name is the client name the server shows (nats server report connections).
	Name string
	// User and Password authenticate with a user/password pair.
	User, Password string
	// Token authenticates with a token.
	Token string
	// CredsFile is a NATS credentials file (JWT + nkey seed).
	CredsFile string
	// NKeyFile is an nkey seed file.
	NKeyFile string
	// TLSCA, TLSCert and TLSKey are PEM files for TLS (CA alone: verify the server;
	// cert and key: mutual TLS).
	TLSCA, TLSCert, TLSKey string
	// Health, when set, is told about every connection Connect opens, so a
	// health endpoint can report it.
	Health *Health
}

// DefaultURL is where services look for NATS when nothing else is configured.
const DefaultURL = "nats://127.0.0.1:4222"

// ConnConfigFromEnv reads the connection settings every service shares:
// SGTUNE_NATS_URL or NATS_URL, NATS_USER, NATS_PASSWORD (or NATS_PASSWORD_FILE),
// NATS_TOKEN, NATS_CREDS, NATS_NKEY, NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY.
func ConnConfigFromEnv(getenv func(string) string) ConnConfig {
	cfg := ConnConfig{
		URL:       firstNonEmpty(getenv("SGTUNE_NATS_URL"), getenv("NATS_URL")),
		User:      getenv("NATS_USER"),
		Password:  getenv("NATS_PASSWORD"),
		Token:     getenv("NATS_TOKEN"),
		CredsFile: getenv("NATS_CREDS"),
		NKeyFile:  getenv("NATS_NKEY"),
		TLSCA:     getenv("NATS_TLS_CA"),
		TLSCert:   getenv("NATS_TLS_CERT"),
		TLSKey:    getenv("NATS_TLS_KEY"),
	}
	if f := getenv("NATS_PASSWORD_FILE"); f != "" && cfg.Password == "" {
		cfg.Password = "@file:" + f
	}
	return cfg
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// Connect opens a connection that reconnects forever (also when the first
// attempt fails) and logs connection events through logger, and returns a
// JetStream context. It waits up to 30 s (or ctx) for the first connection.
func Connect(ctx context.Context, cfg ConnConfig, logger zerolog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	url := cfg.URL
	if url == "" {
		url = DefaultURL
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn().Err(err).Msg("disconnected from NATS")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("reconnected to NATS")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := logger.Warn().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("NATS async error")
		}),
	}
	auth, err := authOptions(cfg)
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, auth...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(url), err)
	}
	if err := waitConnected(ctx, nc, 30*time.Second); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("open JetStream: %w", err)
	}
	if cfg.Health != nil {
		cfg.Health.watch(nc)
	}
	return nc, js, nil
}

// authOptions turns cfg's credentials and TLS files into connection options.
func authOptions(cfg ConnConfig) ([]nats.Option, error) {
	var opts []nats.Option
	password := cfg.Password
	if strings.HasPrefix(password, "@file:") {
		p, err := readSecret(strings.TrimPrefix(password, "@file:"))
		if err != nil {
			return nil, fmt.Errorf("read NATS password file: %w", err)
		}
		password = p
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(cfg.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("read NATS nkey file: %w", err)
		}
		opts = append(opts, opt)
	}
	if cfg.TLSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.TLSCA))
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		opts = append(opts, nats.ClientCert(cfg.TLSCert, cfg.TLSKey))
	}
	return opts, nil
}

func waitConnected(ctx context.Context, nc *nats.Conn, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !nc.IsConnected() {
		// A refused password will be refused again: say so now, not after the wait.
		if err := nc.LastError(); isAuthError(err) {
			return fmt.Errorf("%w (%v): check NATS_USER and NATS_PASSWORD (or NATS_PASSWORD_FILE, NATS_TOKEN, NATS_CREDS)", ErrAuth, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no server answered within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// redactURL hides passwords embedded in URLs before they reach a log or error.
func redactURL(url string) string {
	parts := strings.Split(url, ",")
	for i, p := range parts {
		if at := strings.Index(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "***" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// Drain flushes a connection's pending publishes and acks, unsubscribes, and
// closes it, waiting up to timeout; a service calls it last, on shutdown.
func Drain(nc *nats.Conn, timeout time.Duration, logger zerolog.Logger) {
	if err := nc.Drain(); err != nil {
		logger.Debug().Err(err).Msg("NATS drain failed; closing")
		nc.Close()
		return
	}
	deadline := time.Now().Add(timeout)
	for !nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !nc.IsClosed() {
		logger.Warn().Dur("timeout", timeout).Msg("NATS drain timed out; closing")
		nc.Close()
	}
}
