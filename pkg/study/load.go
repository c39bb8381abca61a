package study

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sgtune/sgtune/pkg/events"
)

// specError is a problem at one key of a spec file.
type specError struct {
	line int
	path string
	msg  string
}

func (e *specError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.line, e.path, e.msg)
	}
	return e.path + ": " + e.msg
}

// LoadFile reads a YAML or JSON spec file over the defaults and validates it.
// Errors name the file and the key ("study.yaml: line 4: workload.num_prompt: unknown key").
func LoadFile(path string) (Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("%w: read %s: %w", ErrInvalidSpec, path, err)
	}
	return Parse(path, data)
}

// Parse reads spec text (YAML, or JSON, which is YAML too) over the defaults
// and validates the result. name is used in error messages (usually the file path).
func Parse(name string, data []byte) (Spec, error) {
	spec := Default()
	if len(bytes.TrimSpace(data)) == 0 {
		return Spec{}, fmt.Errorf("%w: %s: the file is empty", ErrInvalidSpec, name)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Spec{}, fmt.Errorf("%w: %s: %w", ErrInvalidSpec, name, err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return Spec{}, fmt.Errorf("%w: %s: the top level must be a mapping of keys (study_name, space, ...)", ErrInvalidSpec, name)
	}
	doc := root.Content[0]
	if err := checkNode(doc, reflect.TypeOf(spec), ""); err != nil {
		return Spec{}, fmt.Errorf("%w: %s: %w", ErrInvalidSpec, name, err)
	}
	mix, restore := detach(doc, "workloads")
	err := doc.Decode(&spec)
	restore()
	if err != nil {
		return Spec{}, fmt.Errorf("%w: %s: %w", ErrInvalidSpec, name, err)
	}
	if err := decodeMix(mix, &spec); err != nil {
		return Spec{}, fmt.Errorf("%w: %s: %w", ErrInvalidSpec, name, err)
	}
	if err := spec.Validate(); err != nil {
		return Spec{}, fmt.Errorf("%w: %s: %w", ErrInvalidSpec, name, atLine(doc, err))
	}
	if err := spec.CheckMetricNames(); err != nil {
		return Spec{}, fmt.Errorf("%w: %s: %w", ErrInvalidSpec, name, atLine(doc, err))
	}
	return spec, nil
}

// lineError puts the spec file's line in front of a Validate error.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

// atLine adds the file line of the key an error is about. Every error of
// Validate and CheckMetricNames starts with the key's path
// ("space.tp_sise: ...", "objectives[1].metric: ..."); the path is looked up
// in the file's YAML tree, down to the deepest key the file has (a default
// the file does not set has no line, and the error is returned as it is).
func atLine(doc *yaml.Node, err error) error {
	msg := err.Error()
	path, _, ok := strings.Cut(msg, ": ")
	if !ok || strings.ContainsAny(path, " \t\"'") {
		return err
	}
	if line := lineOf(doc, path); line > 0 {
		return &lineError{line: line, err: err}
	}
	return err
}

// lineOf finds the line of a key path ("a.b[2].c") in a YAML mapping; 0 when
// the file does not have its first key.
func lineOf(node *yaml.Node, path string) int {
	line := 0
	for _, part := range strings.Split(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if node.Kind != yaml.MappingNode {
			return line
		}
		var next *yaml.Node
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value == key {
				line, next = node.Content[i].Line, node.Content[i+1]
				break
			}
		}
		if next == nil {
			return line
		}
		node = next
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			rest = strings.TrimPrefix(after, "[")
			var i int
			if _, err := fmt.Sscan(idx, &i); err != nil || node.Kind != yaml.SequenceNode || i < 0 || i >= len(node.Content) {
				return line
			}
			node = node.Content[i]
			line = node.Line
		}
	}
	return line
}

// detach removes key from mapping node doc and returns its value (nil when
// absent) and a function that puts it back (for the line numbers of errors).
func detach(doc *yaml.Node, key string) (*yaml.Node, func()) {
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == key {
			kept := doc.Content
			doc.Content = append(doc.Content[:i:i], doc.Content[i+2:]...)
			return kept[i+1], func() { doc.Content = kept }
		}
	}
	return nil, func() {}
}

// decodeMix decodes the workloads: list, each entry over a copy of the
// spec's (already decoded) workload, with weight 1 unless it gives one.
func decodeMix(node *yaml.Node, spec *Spec) error {
	if node == nil || node.Tag == "!!null" {
		return nil
	}
	if node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	spec.Workloads = make([]events.NamedWorkload, len(node.Content))
	for i, item := range node.Content {
		w := events.NamedWorkload{Weight: 1, Workload: cloneWorkload(spec.Workload)}
		if err := item.Decode(&w); err != nil {
			return fmt.Errorf("workloads[%d]: %w", i, err)
		}
		spec.Workloads[i] = w
	}
	return nil
}

// FromJSON decodes a spec as stored in the sgtune_studies bucket and validates it.
func FromJSON(data []byte) (Spec, error) {
	var spec Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return Spec{}, fmt.Errorf("%w: stored spec: %w", ErrInvalidSpec, err)
	}
	if err := spec.Validate(); err != nil {
		return Spec{}, fmt.Errorf("%w: stored spec: %w", ErrInvalidSpec, err)
	}
	return spec, nil
}

// ToJSON encodes a spec for the sgtune_studies bucket.
func (s Spec) ToJSON() ([]byte, error) { return json.Marshal(s) }

var (
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	yamlUnmarshaler = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

// checkNode walks a YAML node against the Go type it will decode into and
// reports unknown keys and wrong types with the key's full path, which the YAML
// decoder's own messages do not name.
func checkNode(node *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return nil
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(yamlUnmarshaler) {
		return nil // the type reports its own errors (Space)
	}
	if pt.Implements(textUnmarshaler) {
		if node.Kind != yaml.ScalarNode {
			return &specError{node.Line, path, "must be a single value"}
		}
		var probe = reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := probe.UnmarshalText([]byte(node.Value)); err != nil {
			return &specError{node.Line, path, err.Error()}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if node.Kind != yaml.MappingNode {
			return &specError{node.Line, path, "must be a mapping"}
		}
		fields := map[string]reflect.Type{}
		var known []string
		yamlFields(t, fields, &known)
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			ft, ok := fields[k.Value]
			sub := join(path, k.Value)
			if !ok {
				return &specError{k.Line, sub, fmt.Sprintf("unknown key (known here: %s)", strings.Join(known, ", "))}
			}
			if err := checkNode(v, ft, sub); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if node.Kind != yaml.SequenceNode {
			return &specError{node.Line, path, "must be a list"}
		}
		for i, item := range node.Content {
			if err := checkNode(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if node.Kind != yaml.MappingNode {
			return &specError{node.Line, path, "must be a mapping"}
		}
		for i := 0; i+1 < len(node.Content); i += 2 {
			if err := checkNode(node.Content[i+1], t.Elem(), join(path, node.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.Interface:
		if node.Kind != yaml.ScalarNode {
			return &specError{node.Line, path, "must be a single value, not a list or mapping"}
		}
	case reflect.String:
		if node.Kind != yaml.ScalarNode || node.Tag != "!!str" {
			return &specError{node.Line, path, fmt.Sprintf("want a string, got %s", nodeDesc(node))}
		}
	case reflect.Bool:
		if node.Kind != yaml.ScalarNode || node.Tag != "!!bool" {
			return &specError{node.Line, path, fmt.Sprintf("want true or false, got %s", nodeDesc(node))}
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if node.Kind != yaml.ScalarNode || node.Tag != "!!int" {
			return &specError{node.Line, path, fmt.Sprintf("want an integer, got %s", nodeDesc(node))}
		}
	case reflect.Float64, reflect.Float32:
		if node.Kind != yaml.ScalarNode || (node.Tag != "!!int" && node.Tag != "!!float") {
			return &specError{node.Line, path, fmt.Sprintf("want a number, got %s", nodeDesc(node))}
		}
	}
	return nil
}

// yamlFields lists the YAML keys of struct type t and their types, those of
// its inlined (",inline") structs included.
func yamlFields(t reflect.Type, fields map[string]reflect.Type, known *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		parts := strings.Split(f.Tag.Get("yaml"), ",")
		if slices.Contains(parts[1:], "inline") && f.Type.Kind() == reflect.Struct {
			yamlFields(f.Type, fields, known)
			continue
		}
		if parts[0] == "" || parts[0] == "-" {
			continue
		}
		fields[parts[0]] = f.Type
		*known = append(*known, parts[0])
	}
}

func nodeDesc(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return fmt.Sprintf("%q", n.Value)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// IsSpecError reports whether err is a problem with a spec (as opposed to I/O).
func IsSpecError(err error) bool { return errors.Is(err, ErrInvalidSpec) }
