package compose

import (
	"bytes"
	"math"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/crossplane/function-sdk-go/errors"
)

// Error strings.
const (
	errFmtMarshal     = "cannot marshal %T to JSON"
	errFmtUnmarshal   = "cannot decode %s"
	errFmtUnmarshalAt = "cannot decode %s at %s"
	errUnexpected     = "unexpected JSON token"
)

// encodeOptions encode typed objects the way every upstream Kubernetes Go
// client does (encoding/json): `omitempty` omits zero numbers, false and nil
// pointers, and keeps a non-nil pointer to an empty struct.
//
// The SDK's composed.From uses JSON v2 semantics instead, which get provider
// types wrong: CAPA's AWSMachineSpec would carry placementGroupPartition: 0
// (the CRD's minimum is 1, so the API server rejects it) and a spot pool's
// spotMarketOptions: {} would be dropped, silently running on demand.
var encodeOptions = json.JoinOptions(jsonv1.OmitEmptyWithLegacyDefinition(true))

// ToStruct encodes a typed object as a protobuf Struct, the form composed
// resources take in a RunFunctionResponse. It drops what a composed resource
// must not carry: status, and the metadata fields encoding/json cannot omit.
func ToStruct(v any) (*structpb.Struct, error) {
	b, err := json.Marshal(v, encodeOptions)
	if err != nil {
		return nil, errors.Wrapf(err, errFmtMarshal, v)
	}
	s, err := jsonToStruct(b)
	if err != nil {
		return nil, errors.Wrapf(err, errFmtMarshal, v)
	}
	delete(s.GetFields(), "status")
	if md := s.GetFields()["metadata"].GetStructValue(); md != nil {
		delete(md.GetFields(), "creationTimestamp")
	}
	return s, nil
}

// FromStruct decodes a protobuf Struct into a typed value. With strict,
// fields the type does not know are an error. Errors name the field, as a
// path below root (e.g. spec.scaling.replicas).
func FromStruct(s *structpb.Struct, into any, what, root string, strict bool) error {
	var buf bytes.Buffer
	enc := jsontext.NewEncoder(&buf)
	if err := encodeStruct(enc, s); err != nil {
		return errors.Wrapf(err, errFmtUnmarshal, what)
	}
	dec := jsontext.NewDecoder(&buf)
	if err := json.UnmarshalDecode(dec, into, json.RejectUnknownMembers(strict)); err != nil {
		return errors.Wrapf(err, errFmtUnmarshalAt, what, fieldPath(root, dec.StackPointer()))
	}
	return nil
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

func jsonToStruct(b []byte) (*structpb.Struct, error) {
	d := jsontext.NewDecoder(bytes.NewReader(b))
	v, err := decodeValue(d)
	if err != nil {
		return nil, err
	}
	s := v.GetStructValue()
	if s == nil {
		return nil, errors.New("cannot encode a JSON " + v.String() + " as an object")
	}
	return s, nil
}

func decodeValue(d *jsontext.Decoder) (*structpb.Value, error) {
	tok, err := d.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case '{':
		fields := map[string]*structpb.Value{}
		for d.PeekKind() != '}' {
			k, err := d.ReadToken()
			if err != nil {
				return nil, err
			}
			// A token is only valid until the next read: copy the key.
			key := k.String()
			v, err := decodeValue(d)
			if err != nil {
				return nil, err
			}
			fields[key] = v
		}
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		return structpb.NewStructValue(&structpb.Struct{Fields: fields}), nil
	case '[':
		var vals []*structpb.Value
		for d.PeekKind() != ']' {
			v, err := decodeValue(d)
			if err != nil {
				return nil, err
			}
			vals = append(vals, v)
		}
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		return structpb.NewListValue(&structpb.ListValue{Values: vals}), nil
	case '"':
		return structpb.NewStringValue(tok.String()), nil
	case '0':
		return structpb.NewNumberValue(tok.Float()), nil
	case 't', 'f':
		return structpb.NewBoolValue(tok.Bool()), nil
	case 'n':
		return structpb.NewNullValue(), nil
	}
	return nil, errors.New(errUnexpected)
}

func encodeStruct(e *jsontext.Encoder, s *structpb.Struct) error {
	if err := e.WriteToken(jsontext.ObjectStart); err != nil {
		return err
	}
	for k, v := range s.GetFields() {
		if err := e.WriteToken(jsontext.String(k)); err != nil {
			return err
		}
		if err := encodeValue(e, v); err != nil {
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
