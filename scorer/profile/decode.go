package profile

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder walks a YAML node tree into a Go value by the fields' yaml tags,
// collecting one *KeyError per problem instead of stopping at the first.
// It knows only the kinds a Profile uses: structs (with inline embedded
// structs), maps with string keys, lists, strings, integers and float64.
type decoder struct {
	errs []error
}

func reflectValue(p *Profile) reflect.Value { return reflect.ValueOf(p).Elem() }

func (d *decoder) fail(n *yaml.Node, key, format string, args ...any) {
	if key == "" {
		key = "(root)"
	}
	d.errs = append(d.errs, &KeyError{Key: key, Reason: fmt.Sprintf(format, args...), Line: n.Line})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	null := n.Kind == yaml.ScalarNode && n.Tag == "!!null"
	switch v.Kind() {
	case reflect.Struct:
		if null {
			return // keep the defaults
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, key, "want a mapping, got %s", describe(n))
			return
		}
		fields := fieldsByTag(v.Type())
		d.pairs(n, key, func(kn, val *yaml.Node, path string) {
			i, ok := fields[kn.Value]
			if !ok {
				d.fail(kn, path, "unknown key")
				return
			}
			d.decode(val, v.FieldByIndex(i), path)
		})
	case reflect.Map:
		if null {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, key, "want a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		d.pairs(n, key, func(kn, val *yaml.Node, path string) {
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, elem, path)
			m.SetMapIndex(reflect.ValueOf(kn.Value), elem)
		})
		v.Set(m)
	case reflect.Slice:
		if null {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, key, "want a list, got %s", describe(n))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, out.Index(i), fmt.Sprintf("%s[%d]", key, i))
		}
		v.Set(out)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || null {
			d.fail(n, key, "want a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		var i int64
		if n.Kind != yaml.ScalarNode || null || n.Decode(&i) != nil {
			d.fail(n, key, "want an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Uint32:
		var u uint32
		if n.Kind != yaml.ScalarNode || null || n.Decode(&u) != nil {
			d.fail(n, key, "want a number from 0 to 4294967295, got %s", describe(n))
			return
		}
		v.SetUint(uint64(u))
	case reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || null || n.Decode(&f) != nil {
			d.fail(n, key, "want a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		// A Profile field of a kind this decoder does not know: a bug here,
		// not in the file.
		d.fail(n, key, "cannot decode into %s", v.Type())
	}
}

// pairs calls fn for each key of a mapping node, rejecting duplicate and
// non-scalar keys.
func (d *decoder) pairs(n *yaml.Node, key string, fn func(kn, val *yaml.Node, path string)) {
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, val := n.Content[i], n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			d.fail(kn, key, "keys must be plain strings, got %s", describe(kn))
			continue
		}
		path := kn.Value
		if key != "" {
			path = key + "." + kn.Value
		}
		if seen[kn.Value] {
			d.fail(kn, path, "duplicate key")
			continue
		}
		seen[kn.Value] = true
		fn(kn, val, path)
	}
}

// fieldsByTag maps each yaml key to its field's index path; the fields of
// an embedded struct tagged ",inline" count as the outer struct's own.
func fieldsByTag(t reflect.Type) map[string][]int {
	fields := make(map[string][]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.Anonymous && opts == "inline" && f.Type.Kind() == reflect.Struct {
			for k, idx := range fieldsByTag(f.Type) {
				fields[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name != "" && name != "-" {
			fields[name] = []int{i}
		}
	}
	return fields
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	default:
		return "something else"
	}
}
