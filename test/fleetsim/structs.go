package fleetsim

import (
	"maps"
	"slices"
	"strconv"

	"google.golang.org/protobuf/types/known/structpb"
)

// Helpers to read and build protobuf Structs, the wire form of every object
// the function sees.

func str(s string) *structpb.Value { return structpb.NewStringValue(s) }

func num[T int32 | int64](n T) *structpb.Value { return structpb.NewNumberValue(float64(n)) }

func obj(f map[string]*structpb.Value) *structpb.Value {
	return structpb.NewStructValue(&structpb.Struct{Fields: f})
}

// strMap encodes a string map.
func strMap(m map[string]string) *structpb.Value {
	f := make(map[string]*structpb.Value, len(m))
	for k, v := range m {
		f[k] = str(v)
	}
	return obj(f)
}

// strList encodes a string list.
func strList(l []string) *structpb.Value {
	vs := make([]*structpb.Value, len(l))
	for i, s := range l {
		vs[i] = str(s)
	}
	return structpb.NewListValue(&structpb.ListValue{Values: vs})
}

// at walks nested Struct fields; nil where a field is missing.
func at(s *structpb.Struct, path ...string) *structpb.Value {
	var v *structpb.Value
	for _, k := range path {
		if s == nil {
			return nil
		}
		v = s.GetFields()[k]
		s = v.GetStructValue()
	}
	return v
}

func stringAt(s *structpb.Struct, path ...string) string { return at(s, path...).GetStringValue() }

// int32At reads a number field, and whether it is set.
func int32At(s *structpb.Struct, path ...string) (int32, bool) {
	v := at(s, path...)
	if _, ok := v.GetKind().(*structpb.Value_NumberValue); !ok {
		return 0, false
	}
	return int32(v.GetNumberValue()), true
}

// stringsOf decodes a Struct of strings.
func stringsOf(v *structpb.Value) map[string]string {
	f := v.GetStructValue().GetFields()
	out := make(map[string]string, len(f))
	for k, x := range f {
		out[k] = x.GetStringValue()
	}
	return out
}

// with returns a shallow copy of s with field k set to v (removed if v is
// nil). Nested values are shared, never modified: the function's responses
// may share them with its cache.
func with(s *structpb.Struct, k string, v *structpb.Value) *structpb.Struct {
	f := maps.Clone(s.GetFields())
	if f == nil {
		f = map[string]*structpb.Value{}
	}
	if v == nil {
		delete(f, k)
	} else {
		f[k] = v
	}
	return &structpb.Struct{Fields: f}
}

// intOrPercent resolves a rollout bound (an integer or "N%") against n
// replicas, rounding up when roundUp (maxSurge) and down otherwise
// (maxUnavailable), as Cluster API does.
func intOrPercent(v *structpb.Value, n int32, roundUp bool) int32 {
	if s, ok := v.GetKind().(*structpb.Value_StringValue); ok {
		p, err := strconv.Atoi(s.StringValue[:max(len(s.StringValue)-1, 0)])
		if err != nil {
			return 0
		}
		x := int64(p) * int64(n)
		if roundUp {
			x += 99
		}
		return int32(min(x/100, int64(n))) //nolint:gosec // At most n, an int32.
	}
	return int32(v.GetNumberValue())
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// equalStruct is proto.Equal for Structs, without its reflection: the
// model compares every desired object with the live one.
func equalStruct(a, b *structpb.Struct) bool {
	fa, fb := a.GetFields(), b.GetFields()
	if len(fa) != len(fb) || (a == nil) != (b == nil) {
		return false
	}
	for k, va := range fa {
		vb, ok := fb[k]
		if !ok || !equalValue(va, vb) {
			return false
		}
	}
	return true
}

// equalValue is proto.Equal for Values.
func equalValue(a, b *structpb.Value) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	switch x := a.GetKind().(type) {
	case *structpb.Value_NullValue:
		_, ok := b.GetKind().(*structpb.Value_NullValue)
		return ok
	case *structpb.Value_NumberValue:
		y, ok := b.GetKind().(*structpb.Value_NumberValue)
		return ok && x.NumberValue == y.NumberValue
	case *structpb.Value_StringValue:
		y, ok := b.GetKind().(*structpb.Value_StringValue)
		return ok && x.StringValue == y.StringValue
	case *structpb.Value_BoolValue:
		y, ok := b.GetKind().(*structpb.Value_BoolValue)
		return ok && x.BoolValue == y.BoolValue
	case *structpb.Value_StructValue:
		y, ok := b.GetKind().(*structpb.Value_StructValue)
		return ok && equalStruct(x.StructValue, y.StructValue)
	case *structpb.Value_ListValue:
		y, ok := b.GetKind().(*structpb.Value_ListValue)
		if !ok || len(x.ListValue.GetValues()) != len(y.ListValue.GetValues()) || (x.ListValue == nil) != (y.ListValue == nil) {
			return false
		}
		for i, v := range x.ListValue.GetValues() {
			if !equalValue(v, y.ListValue.GetValues()[i]) {
				return false
			}
		}
		return true
	}
	return b.GetKind() == nil
}
