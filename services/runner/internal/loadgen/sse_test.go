package loadgen

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func parseAll(chunks ...string) []string {
	var p SSEParser
	var out []string
	fn := func(d []byte) bool { out = append(out, string(d)); return true }
	for _, c := range chunks {
		p.Feed([]byte(c), fn)
	}
	p.Flush(fn)
	return out
}

func TestSSEParser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		given    string
		expected []string
	}{
		{name: "one event", given: "data: {\"a\":1}\n\n", expected: []string{`{"a":1}`}},
		{name: "no space after colon", given: "data:{\"a\":1}\n\n", expected: []string{`{"a":1}`}},
		{name: "only one space stripped", given: "data:  x\n\n", expected: []string{" x"}},
		{name: "multi-line data", given: "data: a\ndata: b\n\n", expected: []string{"a\nb"}},
		{name: "crlf", given: "data: a\r\n\r\ndata: b\r\n\r\n", expected: []string{"a", "b"}},
		{name: "cr only", given: "data: a\r\rdata: b\r\r", expected: []string{"a", "b"}},
		{name: "comments and other fields", given: ": ping\nevent: x\nid: 3\nretry: 10\ndata: a\n\n", expected: []string{"a"}},
		{name: "blank lines without data", given: "\n\n\n: hi\n\n", expected: nil},
		{name: "done", given: "data: 1\n\ndata: [DONE]\n\n", expected: []string{"1", "[DONE]"}},
		{name: "error event", given: "data: {\"error\": {\"message\": \"x\"}}\n\n", expected: []string{`{"error": {"message": "x"}}`}},
		{name: "missing final blank line", given: "data: a\n\ndata: b", expected: []string{"a", "b"}},
		{name: "empty data", given: "data:\n\n", expected: []string{""}},
		{name: "field without colon", given: "data\n\n", expected: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := parseAll(tt.given); !slices.Equal(got, tt.expected) {
				t.Fatalf("whole: got %q, want %q", got, tt.expected)
			}
			// Every split point gives the same events.
			for i := 0; i <= len(tt.given); i++ {
				if got := parseAll(tt.given[:i], tt.given[i:]); !slices.Equal(got, tt.expected) {
					t.Fatalf("split at %d: got %q, want %q", i, got, tt.expected)
				}
			}
			// So does byte by byte.
			var bytewise []string
			for _, c := range []byte(tt.given) {
				bytewise = append(bytewise, string(c))
			}
			if got := parseAll(bytewise...); !slices.Equal(got, tt.expected) {
				t.Fatalf("bytewise: got %q, want %q", got, tt.expected)
			}
		})
	}
}

func TestSSEParser_stop(t *testing.T) {
	t.Parallel()
	var p SSEParser
	n := 0
	ok := p.Feed([]byte("data: a\n\ndata: b\n\n"), func([]byte) bool { n++; return false })
	if ok || n != 1 {
		t.Fatalf("ok=%v n=%d, want false 1", ok, n)
	}
}

// referenceSSE is a deliberately different, non-incremental parser of the same rules.
func referenceSSE(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	var out []string
	var data []string
	has := false
	lines := strings.Split(s, "\n")
	for _, line := range lines {
		if line == "" {
			if has {
				out = append(out, strings.Join(data, "\n"))
			}
			data, has = nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		if field == "data" {
			data = append(data, value)
			has = true
		}
	}
	if has {
		out = append(out, strings.Join(data, "\n"))
	}
	return out
}

func FuzzParseSSE(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\ndata: [DONE]\n\n"), uint16(5))
	f.Add([]byte("data:x\r\ndata: y\r\n\r\n: c\n"), uint16(9))
	f.Add([]byte("data: a\r"), uint16(8))
	f.Add([]byte("event: e\nid\ndata\n\n\r\r"), uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, split uint16) {
		i := int(split) % (len(b) + 1)
		whole := parseAll(string(b))
		parts := parseAll(string(b[:i]), string(b[i:]))
		if !slices.Equal(whole, parts) {
			t.Fatalf("split at %d changes events: %q vs %q", i, whole, parts)
		}
		if ref := referenceSSE(string(b)); !slices.Equal(whole, ref) {
			t.Fatalf("parser %q, reference %q", whole, ref)
		}
	})
}

func BenchmarkSSEParser(b *testing.B) {
	chunk := []byte("data: {\"text\":\"" + strings.Repeat("x", 400) + "\",\"meta_info\":{\"completion_tokens\":100}}\n\n")
	stream := bytes.Repeat(chunk, 64)
	var p SSEParser
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		for off := 0; off < len(stream); off += 4096 {
			p.Feed(stream[off:min(off+4096, len(stream))], func(d []byte) bool { scanChunk(d); return true })
		}
	}
}
