package rules

import (
	"github.com/sgtune/sgtune/pkg/study"
)

// modelOf maps the spec's model shape (a preset, a user-described shape, or a
// preset recognised in the model path; pkg/study ModelShape) to the rules'
// Model. The Model is unknown (Known() false) when the spec gives none.
func modelOf(m study.Model) Model {
	name, s, ok := m.ResolveShape()
	if !ok {
		return Model{}
	}
	return Model{
		Name: name, Heads: s.Heads, KVHeads: s.KVHeads, ParamsB: s.ParamsB, Layers: s.Layers,
		MoE: s.MoE, MLA: s.MLA, Attention: s.Attention,
	}
}

// LookupPreset returns the shape of preset (case-insensitive), or, when preset
// is empty, of the preset whose name appears in the model path. ok is false
// (and the Model unknown) otherwise: model-dependent rules are then skipped.
func LookupPreset(preset, modelPath string) (Model, bool) {
	m := modelOf(study.Model{Preset: preset, Path: modelPath})
	return m, m.Known()
}

// PresetNames lists the known presets, sorted.
func PresetNames() []string { return study.ModelPresetNames() }
