package sglang

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// What a running server reports it runs (shared/reference/sglang.md B.3, B.4).
const (
	// ServerInfoPath answers one flat object: every ServerArgs field with its
	// effective value (after SGLang's silent adjustments), scheduler figures,
	// internal_states and version.
	ServerInfoPath = "/get_server_info"
	// ModelInfoPath answers model_path, tokenizer_path, is_generation, ...
	ModelInfoPath = "/get_model_info"
	// ServerInfoPathNew and ModelInfoPathNew are the same answers under
	// the names SGLang's main branch added beside the old ones (asked when
	// a server answers 404 to the old name: a build that dropped it).
	ServerInfoPathNew = "/server_info"
	ModelInfoPathNew  = "/model_info"
)

// ErrServerInfo is wrapped by ReadInfo's errors: the server did not answer
// /get_server_info or /get_model_info with a readable object.
var ErrServerInfo = errors.New("sglang: server info unreadable")

// infoTimeout bounds one info request; a healthy SGLang answers at once.
const infoTimeout = 15 * time.Second

// maxInfoBytes bounds an info answer (the flat ServerArgs dict is tens of KB).
const maxInfoBytes = 4 << 20

// ServerInfo is what a server reports about itself.
type ServerInfo struct {
	// Version is SGLang's version ("version" of /get_server_info).
	Version string
	// Args are /get_server_info's fields: ServerArgs by name, effective
	// values (JSON numbers as float64), plus scheduler figures such as
	// max_total_num_tokens. internal_states and version are left out.
	Args map[string]any
	// ModelPath is /get_model_info's model_path: the model the server loaded.
	ModelPath string
}

var infoClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// ReadInfo asks a healthy server at baseURL what it runs. apiKey, when the
// server was started with --api-key, is sent as a bearer token (SGLang
// exempts only /health* and /metrics from it). Every error wraps
// ErrServerInfo and says which endpoint failed and how (a caller whose ctx
// was cancelled should check ctx.Err() first: that is no answer about the
// server).
func ReadInfo(ctx context.Context, baseURL, apiKey string) (ServerInfo, error) {
	var raw map[string]any
	path, err := getJSONEither(ctx, baseURL, apiKey, &raw, ServerInfoPath, ServerInfoPathNew)
	if err != nil {
		return ServerInfo{}, err
	}
	if raw == nil {
		return ServerInfo{}, fmt.Errorf("%w: GET %s answered null", ErrServerInfo, path)
	}
	info := ServerInfo{Args: make(map[string]any, len(raw))}
	for k, v := range raw {
		switch k {
		case "version":
			s, ok := v.(string)
			if !ok {
				return ServerInfo{}, fmt.Errorf("%w: GET %s: version is %v, not a string", ErrServerInfo, path, v)
			}
			info.Version = s
		case "internal_states":
		default:
			info.Args[k] = v
		}
	}
	var model struct {
		ModelPath *string `json:"model_path"`
	}
	path, err = getJSONEither(ctx, baseURL, apiKey, &model, ModelInfoPath, ModelInfoPathNew)
	if err != nil {
		return ServerInfo{}, err
	}
	if model.ModelPath == nil || *model.ModelPath == "" {
		return ServerInfo{}, fmt.Errorf("%w: GET %s: no model_path in the answer", ErrServerInfo, path)
	}
	info.ModelPath = *model.ModelPath
	return info, nil
}

// getJSONEither reads the answer of path, or of alt when the server does
// not know path (404), and says which one answered.
func getJSONEither(ctx context.Context, baseURL, apiKey string, dst any, path, alt string) (string, error) {
	err := getJSON(ctx, baseURL+path, apiKey, dst)
	if errors.Is(err, errNotFound) {
		if errAlt := getJSON(ctx, baseURL+alt, apiKey, dst); !errors.Is(errAlt, errNotFound) {
			return alt, errAlt
		}
	}
	return path, err
}

// errNotFound marks a 404 answer.
var errNotFound = errors.New("not found")

func getJSON(ctx context.Context, url, apiKey string, dst any) error {
	ctx, cancel := context.WithTimeout(ctx, infoTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrServerInfo, err)
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	path := req.URL.Path
	resp, err := infoClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: GET %s: %v", ErrServerInfo, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxInfoBytes+1))
	if err != nil {
		return fmt.Errorf("%w: GET %s: reading the answer: %v", ErrServerInfo, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("%w: GET %s answered %d: %s", ErrServerInfo, path, resp.StatusCode, TailString(bytes.TrimSpace(body), 200))
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%w (%w)", err, errNotFound)
		}
		return err
	}
	if len(body) > maxInfoBytes {
		return fmt.Errorf("%w: GET %s: answer larger than %d bytes", ErrServerInfo, path, maxInfoBytes)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("%w: GET %s: not a JSON object (%v): %s", ErrServerInfo, path, err, TailString(body, 200))
	}
	return nil
}
