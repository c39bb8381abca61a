package sglang

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadInfo(t *testing.T) {
	t.Parallel()
	const serverInfo = `{"model_path": "m/a", "tp_size": 2, "chunked_prefill_size": 8192, "attention_backend": "fa3",
		"max_total_num_tokens": 123456, "internal_states": [{"last_gen_throughput": 10}], "version": "0.5.5"}`
	tests := []struct {
		name           string
		givenInfo      string
		givenInfoCode  int
		givenModel     string
		givenKey       string // the server's --api-key
		givenClientKey string
		givenNewPaths  bool   // the server answers only /server_info and /model_info
		expectedErr    string // "" means success
	}{
		{name: "answers under the new names only", givenInfo: serverInfo, givenModel: `{"model_path": "m/a"}`, givenNewPaths: true},
		{name: "answers", givenInfo: serverInfo, givenModel: `{"model_path": "m/a", "is_generation": true}`},
		{name: "with the API key", givenInfo: serverInfo, givenModel: `{"model_path": "m/a"}`, givenKey: "sk", givenClientKey: "sk"},
		{name: "without the API key", givenInfo: serverInfo, givenModel: `{"model_path": "m/a"}`, givenKey: "sk",
			expectedErr: "GET /get_server_info answered 401"},
		{name: "server error", givenInfo: `{"detail": "boom"}`, givenInfoCode: 500, givenModel: `{"model_path": "m/a"}`,
			expectedErr: "GET /get_server_info answered 500: {\"detail\": \"boom\"}"},
		{name: "not JSON", givenInfo: `<html>proxy</html>`, givenModel: `{"model_path": "m/a"}`, expectedErr: "GET /get_server_info: not a JSON object"},
		{name: "null", givenInfo: `null`, givenModel: `{"model_path": "m/a"}`, expectedErr: "answered null"},
		{name: "version not a string", givenInfo: `{"version": 5}`, givenModel: `{"model_path": "m/a"}`, expectedErr: "version is 5"},
		{name: "no model path", givenInfo: serverInfo, givenModel: `{"is_generation": true}`, expectedErr: "GET /get_model_info: no model_path"},
		{name: "neither name", givenInfo: serverInfo, givenInfoCode: 404, givenModel: `{"model_path": "m/a"}`,
			expectedErr: "GET /get_server_info answered 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.givenKey != "" && r.Header.Get("Authorization") != "Bearer "+tt.givenKey {
					w.WriteHeader(http.StatusUnauthorized)
					_, _ = w.Write([]byte(`{"error": "Unauthorized"}`))
					return
				}
				p := r.URL.Path
				switch {
				case tt.givenNewPaths && (p == ServerInfoPath || p == ModelInfoPath):
					p = ""
				case tt.givenNewPaths && p == ServerInfoPathNew:
					p = ServerInfoPath
				case tt.givenNewPaths && p == ModelInfoPathNew:
					p = ModelInfoPath
				}
				switch p {
				case ServerInfoPath:
					if tt.givenInfoCode != 0 {
						w.WriteHeader(tt.givenInfoCode)
					}
					_, _ = w.Write([]byte(tt.givenInfo))
				case ModelInfoPath:
					_, _ = w.Write([]byte(tt.givenModel))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			info, err := ReadInfo(context.Background(), srv.URL, tt.givenClientKey)
			if tt.expectedErr != "" {
				if !errors.Is(err, ErrServerInfo) || !strings.Contains(err.Error(), tt.expectedErr) {
					t.Fatalf("err = %v, want ErrServerInfo with %q", err, tt.expectedErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Version != "0.5.5" || info.ModelPath != "m/a" || info.Args["tp_size"] != 2.0 || info.Args["attention_backend"] != "fa3" {
				t.Fatalf("info = %+v", info)
			}
			if _, ok := info.Args["internal_states"]; ok {
				t.Fatal("internal_states kept as an arg")
			}
		})
	}
}
