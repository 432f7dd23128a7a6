package compose

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/crossplane/function-sdk-go/errors"
)

// Errors of the JSON parser.
const (
	errFmtSyntax = "invalid JSON at byte %d"
)

// parser turns JSON into protobuf Values directly, without the token
// machinery of a general decoder: it is a third of the work of the SDK's
// protojson path. Its input is what json.Marshal wrote, but it rejects any
// malformed input with an error rather than trusting it.
type parser struct {
	b []byte
	i int
}

func jsonToStruct(b []byte) (*structpb.Struct, error) {
	p := &parser{b: b}
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return nil, errors.Errorf(errFmtSyntax+": want an object", p.i)
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	if p.space(); p.i != len(p.b) {
		return nil, errors.Errorf(errFmtSyntax+": trailing data", p.i)
	}
	return v.GetStructValue(), nil
}

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value() (*structpb.Value, error) {
	p.space()
	if p.i >= len(p.b) {
		return nil, errors.Errorf(errFmtSyntax+": unexpected end", p.i)
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return &structpb.Value{Kind: &structpb.Value_StringValue{StringValue: s}}, nil
	case c == 't':
		return p.literal("true", &structpb.Value{Kind: &structpb.Value_BoolValue{BoolValue: true}})
	case c == 'f':
		return p.literal("false", &structpb.Value{Kind: &structpb.Value_BoolValue{BoolValue: false}})
	case c == 'n':
		return p.literal("null", &structpb.Value{Kind: &structpb.Value_NullValue{}})
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, errors.Errorf(errFmtSyntax+": unexpected %q", p.i, p.b[p.i])
}

func (p *parser) object() (*structpb.Value, error) {
	p.i++ // {
	fields := map[string]*structpb.Value{}
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: &structpb.Struct{Fields: fields}}}, nil
	}
	for {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, errors.Errorf(errFmtSyntax+": want a member name", p.i)
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, errors.Errorf(errFmtSyntax+": want ':'", p.i)
		}
		p.i++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		fields[k] = v
		done, err := p.next('}')
		if err != nil {
			return nil, err
		}
		if done {
			return &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: &structpb.Struct{Fields: fields}}}, nil
		}
	}
}

// next reads what follows a member or an element: a ',' (more follow) or
// the closing bracket (done).
func (p *parser) next(closing byte) (done bool, err error) {
	p.space()
	if p.i >= len(p.b) {
		return false, errors.Errorf(errFmtSyntax+": unexpected end", p.i)
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		return false, nil
	case closing:
		p.i++
		return true, nil
	}
	return false, errors.Errorf(errFmtSyntax+": want ',' or '%c'", p.i, closing)
}

func (p *parser) array() (*structpb.Value, error) {
	p.i++ // [
	var vals []*structpb.Value
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return &structpb.Value{Kind: &structpb.Value_ListValue{ListValue: &structpb.ListValue{Values: vals}}}, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
		done, err := p.next(']')
		if err != nil {
			return nil, err
		}
		if done {
			return &structpb.Value{Kind: &structpb.Value_ListValue{ListValue: &structpb.ListValue{Values: vals}}}, nil
		}
	}
}

// str reads a string. Strings without escapes (nearly all) are sliced out;
// the rare others are decoded by encoding/json, which has JSON's exact
// escape and UTF-8 rules.
func (p *parser) str() (string, error) {
	start := p.i
	p.i++ // "
	escaped := false
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			if s := p.b[start+1 : p.i-1]; !escaped && utf8.Valid(s) {
				return string(s), nil
			}
			var s string
			if err := json.Unmarshal(p.b[start:p.i], &s); err != nil {
				return "", errors.Errorf(errFmtSyntax+": invalid string", start)
			}
			return s, nil
		case c == '\\':
			escaped = true
			p.i += 2
		case c < 0x20:
			return "", errors.Errorf(errFmtSyntax+": control character in string", p.i)
		default:
			p.i++
		}
	}
	return "", errors.Errorf(errFmtSyntax+": unterminated string", start)
}

func (p *parser) number() (*structpb.Value, error) {
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.i++
			continue
		}
		break
	}
	f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil {
		return nil, errors.Errorf(errFmtSyntax+": invalid number", start)
	}
	return &structpb.Value{Kind: &structpb.Value_NumberValue{NumberValue: f}}, nil
}

func (p *parser) literal(lit string, v *structpb.Value) (*structpb.Value, error) {
	if p.i+len(lit) > len(p.b) || string(p.b[p.i:p.i+len(lit)]) != lit {
		return nil, errors.Errorf(errFmtSyntax+": want %s", p.i, lit)
	}
	p.i += len(lit)
	return v, nil
}
