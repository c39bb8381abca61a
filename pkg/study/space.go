package study

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// ParamSpace is one searched parameter and its candidate values, in order.
// A nil value means "None": pass no flag and let SGLang decide.
type ParamSpace struct {
	Name   string `json:"name"`
	Values []any  `json:"values"`
}

// Space is the search space, in the order the spec lists it.
type Space []ParamSpace

// Names lists the searched parameters in order.
func (s Space) Names() []string {
	out := make([]string, len(s))
	for i, p := range s {
		out[i] = p.Name
	}
	return out
}

// Lookup returns the candidate values of one parameter.
func (s Space) Lookup(name string) (ParamSpace, bool) {
	for _, p := range s {
		if p.Name == name {
			return p, true
		}
	}
	return ParamSpace{}, false
}

// Size is the number of distinct configurations (the product of value counts).
func (s Space) Size() float64 {
	n := 1.0
	for _, p := range s {
		n *= float64(len(p.Values))
	}
	return n
}

// Validate checks that every parameter is known, not runner-owned, listed once,
// has at least one value, and that every value has the parameter's type. It
// normalises values in place.
func (s Space) Validate() error {
	if len(s) == 0 {
		return fmt.Errorf("space: at least one parameter is needed")
	}
	seen := map[string]bool{}
	for i := range s {
		p := &s[i]
		def, ok := LookupParam(p.Name)
		if !ok {
			return fmt.Errorf("space.%s: %w", p.Name, unknownParamError(p.Name))
		}
		if def.RunnerOwned || def.Name == "model_path" {
			return fmt.Errorf("space.%s: set by sgtune itself and cannot be searched", p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("space.%s: listed twice", p.Name)
		}
		seen[p.Name] = true
		if len(p.Values) == 0 {
			return fmt.Errorf("space.%s: the value list is empty", p.Name)
		}
		for j, v := range p.Values {
			nv, err := NormalizeValue(def, v)
			if err != nil {
				return fmt.Errorf("space.%s[%d]: %w", p.Name, j, err)
			}
			for k := 0; k < j; k++ {
				if ValueEqual(p.Values[k], nv) {
					return fmt.Errorf("space.%s[%d]: value %s listed twice", p.Name, j, FormatValue(nv))
				}
			}
			p.Values[j] = nv
		}
	}
	return nil
}

// Contains reports whether v is one of the parameter's candidate values.
func (p ParamSpace) Contains(v any) bool {
	for _, c := range p.Values {
		if ValueEqual(c, v) {
			return true
		}
	}
	return false
}

// UnmarshalYAML reads a mapping of parameter name to a list of values, keeping
// the file's order.
func (s *Space) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return &specError{line: node.Line, path: "space", msg: "must be a mapping of parameter name to a list of values"}
	}
	out := Space{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, val := node.Content[i], node.Content[i+1]
		name := key.Value
		if val.Kind != yaml.SequenceNode {
			return &specError{line: val.Line, path: "space." + name, msg: "must be a list of values"}
		}
		ps := ParamSpace{Name: name, Values: []any{}}
		for j, item := range val.Content {
			if item.Kind != yaml.ScalarNode {
				return &specError{line: item.Line, path: fmt.Sprintf("space.%s[%d]", name, j), msg: "must be a single value, not a list or mapping"}
			}
			var v any
			if err := item.Decode(&v); err != nil {
				return &specError{line: item.Line, path: fmt.Sprintf("space.%s[%d]", name, j), msg: err.Error()}
			}
			ps.Values = append(ps.Values, v)
		}
		out = append(out, ps)
	}
	*s = out
	return nil
}

// MarshalYAML writes the space as a mapping in order.
func (s Space) MarshalYAML() (any, error) {
	node := &yaml.Node{Kind: yaml.MappingNode}
	for _, p := range s {
		var vals yaml.Node
		if err := vals.Encode(p.Values); err != nil {
			return nil, err
		}
		vals.Style = yaml.FlowStyle
		node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: p.Name}, &vals)
	}
	return node, nil
}
