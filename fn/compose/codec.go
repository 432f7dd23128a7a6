package compose

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/crossplane/function-sdk-go/errors"

	"github.com/fleetnodepool/function-fleetnodepool/fn/wire"
)

// Error strings.
const (
	errFmtMarshal     = "cannot marshal %T to JSON"
	errFmtUnmarshal   = "cannot decode %s"
	errFmtUnmarshalAt = "cannot decode %s: %s: %s"
	errUnexpected     = "unexpected JSON token"
	errParse          = "cannot parse the wire encoding"
)

// ToStruct encodes a typed object as a protobuf Struct, the form composed
// resources take in a RunFunctionResponse: its wire encoding (package wire,
// what template names are hashed from), parsed. It drops what a composed
// resource must not carry: status, and the metadata fields encoding/json
// cannot omit.
func ToStruct(v any) (*structpb.Struct, error) {
	b, err := wire.Marshal(v)
	if err != nil {
		return nil, errors.Wrapf(err, errFmtMarshal, v)
	}
	return fromWire(b, nil)
}

// An identity is what a composed object is named by.
type identity interface {
	GetName() string
	GetNamespace() string
	GetLabels() map[string]string
}

// fromWire parses an object's wire encoding into a Struct, as ToStruct. With
// an identity, the encoding was made without one (to hash it), and the
// identity's name, namespace and labels are set on the Struct: ToStruct of
// the named object, without encoding it twice.
func fromWire(b []byte, id identity) (*structpb.Struct, error) {
	s, err := jsonToStruct(b)
	if err != nil {
		return nil, errors.Wrap(err, errParse)
	}
	delete(s.GetFields(), "status")
	md := s.GetFields()["metadata"].GetStructValue()
	if md == nil {
		md = &structpb.Struct{Fields: map[string]*structpb.Value{}}
		s.Fields["metadata"] = structpb.NewStructValue(md)
	}
	delete(md.GetFields(), "creationTimestamp")
	if id == nil {
		return s, nil
	}
	md.Fields["name"] = structpb.NewStringValue(id.GetName())
	if ns := id.GetNamespace(); ns != "" {
		md.Fields["namespace"] = structpb.NewStringValue(ns)
	}
	if l := id.GetLabels(); len(l) > 0 {
		ls := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(l))}
		for k, v := range l {
			ls.Fields[k] = structpb.NewStringValue(v)
		}
		md.Fields["labels"] = structpb.NewStructValue(ls)
	}
	return s, nil
}

// FromStruct decodes a protobuf Struct into a typed value. With strict,
// fields the type does not know are an error. Errors name the field, as a
// path below root (e.g. spec.scaling.replicas), and what is wrong with it.
func FromStruct(s *structpb.Struct, into any, what, root string, strict bool) error {
	var buf bytes.Buffer
	enc := jsontext.NewEncoder(&buf)
	if err := encodeStruct(enc, s); err != nil {
		return errors.Wrapf(err, errFmtUnmarshal, what)
	}
	dec := jsontext.NewDecoder(&buf)
	if err := json.UnmarshalDecode(dec, into, json.RejectUnknownMembers(strict)); err != nil {
		return errors.Errorf(errFmtUnmarshalAt, what, fieldPath(root, dec.StackPointer()), describe(err))
	}
	return nil
}

// describe says what is wrong with a value that did not decode.
func describe(err error) string {
	var se *json.SemanticError
	if !errors.As(err, &se) {
		return err.Error()
	}
	switch {
	case se.Err != nil && strings.HasPrefix(se.Err.Error(), "unknown name"):
		return "unknown field: check its spelling against the schema"
	case se.GoType != nil && se.JSONKind != 0:
		return fmt.Sprintf("must be %s, not a JSON %s", goKind(se.GoType.Kind()), jsonKind(se.JSONKind))
	}
	return err.Error()
}

func goKind(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + k.String()
}

func jsonKind(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '{':
		return "object"
	case '[':
		return "list"
	}
	return "value"
}

// fieldPath turns a JSON pointer (/scaling/replicas) into a field path below
// root (spec.scaling.replicas), with list indexes in brackets.
func fieldPath(root string, p jsontext.Pointer) string {
	var b strings.Builder
	b.WriteString(root)
	for _, tok := range strings.Split(string(p), "/")[1:] {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		b.WriteString("." + tok)
	}
	return b.String()
}

// encodeStruct writes s as a JSON object, members sorted by name, so that
// the same Struct always gives the same JSON (and the same decode errors).
func encodeStruct(e *jsontext.Encoder, s *structpb.Struct) error {
	if err := e.WriteToken(jsontext.ObjectStart); err != nil {
		return err
	}
	keys := make([]string, 0, len(s.GetFields()))
	for k := range s.GetFields() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := e.WriteToken(jsontext.String(k)); err != nil {
			return err
		}
		if err := encodeValue(e, s.GetFields()[k]); err != nil {
			return err
		}
	}
	return e.WriteToken(jsontext.ObjectEnd)
}

func encodeValue(e *jsontext.Encoder, v *structpb.Value) error {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		return encodeStruct(e, k.StructValue)
	case *structpb.Value_ListValue:
		if err := e.WriteToken(jsontext.ArrayStart); err != nil {
			return err
		}
		for _, item := range k.ListValue.GetValues() {
			if err := encodeValue(e, item); err != nil {
				return err
			}
		}
		return e.WriteToken(jsontext.ArrayEnd)
	case *structpb.Value_StringValue:
		return e.WriteToken(jsontext.String(k.StringValue))
	case *structpb.Value_NumberValue:
		// Integers are written as integers, so they decode into Go ints.
		if f := k.NumberValue; f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return e.WriteToken(jsontext.Int(int64(f)))
		}
		return e.WriteToken(jsontext.Float(k.NumberValue))
	case *structpb.Value_BoolValue:
		return e.WriteToken(jsontext.Bool(k.BoolValue))
	default:
		return e.WriteToken(jsontext.Null)
	}
}
