package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// unknownKeys walks the YAML tree against the yaml tags of v's type and
// reports every key the gateway does not know, with its dotted path and line,
// so a typo is refused instead of silently ignored.
func unknownKeys(root *yaml.Node, v any) error {
	var errs []error
	var walk func(n *yaml.Node, t reflect.Type, path string)
	walk = func(n *yaml.Node, t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, t, path)
			}
		case yaml.SequenceNode:
			if t.Kind() != reflect.Slice {
				return // the decoder reports the type mismatch
			}
			for i, c := range n.Content {
				walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.MappingNode:
			if t.Kind() != reflect.Struct {
				return
			}
			fields := map[string]reflect.Type{}
			for i := range t.NumField() {
				f := t.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if name != "" && name != "-" {
					fields[name] = f.Type
				}
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				key := k.Value
				if path != "" {
					key = path + "." + k.Value
				}
				ft, ok := fields[k.Value]
				if !ok {
					errs = append(errs, fmt.Errorf("%s: unknown key (line %d)", key, k.Line))
					continue
				}
				walk(n.Content[i+1], ft, key)
			}
		}
	}
	walk(root, reflect.TypeOf(v), "")
	if len(errs) > 0 {
		return fmt.Errorf("invalid config:\n%w", errors.Join(errs...))
	}
	return nil
}
