package study_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sgtune/sgtune/pkg/study"
)

func TestModel_ResolveShape(t *testing.T) {
	t.Parallel()
	custom := &study.ModelShape{ParamsB: 12, Layers: 40, Heads: 40, KVHeads: 8}
	tests := []struct {
		name         string
		given        study.Model
		expectedName string
		expectedOK   bool
		expected     study.ModelShape
	}{
		{"preset", study.Model{Preset: "Qwen2.5-7B", Path: "/x"}, "qwen2.5-7b", true, study.ModelShape{ParamsB: 7.62, Layers: 28, Heads: 28, KVHeads: 4}},
		{"path hint", study.Model{Path: "/models/Meta-Llama-3.1-70B-Instruct"}, "llama-3.1-70b", true, study.ModelShape{ParamsB: 70.6, Layers: 80, Heads: 64, KVHeads: 8}},
		{"more specific hint first", study.Model{Path: "deepseek-ai/DeepSeek-V3.2-Exp"}, "deepseek-v3.2", true,
			study.ModelShape{ParamsB: 671, Layers: 61, Heads: 128, KVHeads: 128, MoE: true, Experts: 256, MLA: true, Attention: "dsa"}},
		{"custom shape named by path", study.Model{Path: "org/my-model", Shape: custom}, "org/my-model", true, *custom},
		{"custom shape wins over preset", study.Model{Path: "org/m", Preset: "llama-3.1-8b", Shape: custom}, "llama-3.1-8b", true, *custom},
		{"unknown", study.Model{Path: "org/unknown"}, "", false, study.ModelShape{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name, shape, ok := tt.given.ResolveShape()
			if name != tt.expectedName || ok != tt.expectedOK || shape != tt.expected {
				t.Fatalf("got %q %+v %v, want %q %+v %v", name, shape, ok, tt.expectedName, tt.expected, tt.expectedOK)
			}
		})
	}
}

func TestModelPresets_are_valid_shapes(t *testing.T) {
	t.Parallel()
	names := study.ModelPresetNames()
	for _, want := range []string{"llama-3.1-8b", "llama-3.1-70b", "qwen2.5-7b", "deepseek-v3"} {
		if _, ok := study.ModelPreset(want); !ok {
			t.Errorf("preset %s missing (have %v)", want, names)
		}
	}
	for _, n := range names {
		s, _ := study.ModelPreset(n)
		if err := s.Validate(); err != nil {
			t.Errorf("preset %s: %v", n, err)
		}
	}
	if s, _ := study.ModelPreset("deepseek-v3"); !s.MoE || !s.MLA {
		t.Errorf("deepseek-v3 must be MoE and MLA: %+v", s)
	}
}

func TestParse_model_shape(t *testing.T) {
	t.Parallel()
	p := writeSpec(t, "study.yaml", `
model:
  path: org/my-moe
  shape: {params_b: 47, layers: 32, heads: 32, kv_heads: 8, moe: true, experts: 8}
`)
	s, err := study.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	name, shape, ok := s.Model.ResolveShape()
	if !ok || name != "org/my-moe" || !shape.MoE || shape.Experts != 8 || shape.KVHeads != 8 {
		t.Fatalf("got %q %+v %v", name, shape, ok)
	}
	// The shape survives the sgtune_studies bucket.
	data, err := s.ToJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := study.FromJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Model.Shape == nil || *back.Model.Shape != *s.Model.Shape {
		t.Fatalf("shape lost in JSON: %+v", back.Model.Shape)
	}
}

func TestParse_model_shape_errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		expected   []string
	}{
		{"unknown preset", "model: {preset: gpt-9}\n", []string{"model.preset", "gpt-9", "llama-3.1-8b", "model.shape"}},
		{"no params", "model: {shape: {heads: 8, kv_heads: 8}}\n", []string{"model.shape.params_b"}},
		{"no heads", "model: {shape: {params_b: 1, kv_heads: 8}}\n", []string{"model.shape.heads"}},
		{"no kv heads", "model: {shape: {params_b: 1, heads: 8}}\n", []string{"model.shape.kv_heads"}},
		{"kv above heads", "model: {shape: {params_b: 1, heads: 8, kv_heads: 16}}\n", []string{"model.shape.kv_heads", "exceed"}},
		{"uneven groups", "model: {shape: {params_b: 1, heads: 12, kv_heads: 8}}\n", []string{"model.shape.kv_heads", "evenly"}},
		{"experts without moe", "model: {shape: {params_b: 1, heads: 8, kv_heads: 8, experts: 4}}\n", []string{"model.shape.experts", "moe"}},
		{"bad variant", "model: {shape: {params_b: 1, heads: 8, kv_heads: 8, attention: sliding}}\n", []string{"model.shape.attention", "sliding"}},
		{"unknown shape key", "model: {shape: {params: 1}}\n", []string{"model.shape.params", "unknown key"}},
		{"wrong type", "model: {shape: {params_b: 1, heads: many, kv_heads: 1}}\n", []string{"model.shape.heads", "integer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := study.LoadFile(writeSpec(t, "study.yaml", tt.text))
			if !errors.Is(err, study.ErrInvalidSpec) {
				t.Fatalf("want ErrInvalidSpec, got %v", err)
			}
			for _, w := range tt.expected {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
