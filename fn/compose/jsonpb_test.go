package compose

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
)

// reference decodes JSON the slow, well-trodden way.
func reference(b []byte) (*structpb.Struct, error) {
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return structpb.NewStruct(m)
}

func TestJSONToStruct(t *testing.T) {
	cases := map[string]struct {
		reason string
		in     string
		err    bool
	}{
		"Nested":       {reason: "Objects, lists and every scalar decode.", in: `{"a":{"b":[1,-2.5e3,"x",true,false,null,{},[]]},"c":""}`},
		"Whitespace":   {reason: "Whitespace between tokens is allowed.", in: " { \"a\" : [ 1 , 2 ] }\n"},
		"Escapes":      {reason: "Escapes, including \\/ and \\u, decode.", in: `{"a":"q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`},
		"Unicode":      {reason: "Raw UTF-8 passes through.", in: `{"a":"héllo, 世界"}`},
		"Empty":        {reason: "An empty object is fine.", in: `{}`},
		"NotObject":    {reason: "Only an object is a Struct.", in: `[1]`, err: true},
		"Trailing":     {reason: "Trailing data is an error.", in: `{} {}`, err: true},
		"Unterminate":  {reason: "An unterminated string is an error.", in: `{"a":"b}`, err: true},
		"BadLiteral":   {reason: "A misspelt literal is an error.", in: `{"a":tru}`, err: true},
		"MissingColon": {reason: "A member without ':' is an error.", in: `{"a" 1}`, err: true},
		"BadNumber":    {reason: "A malformed number is an error.", in: `{"a":1-2}`, err: true},
		"ObjectEnd":    {reason: "An object cut off after a member is an error.", in: `{"a":1`, err: true},
		"ArrayEnd":     {reason: "An array cut off after an element is an error.", in: `{"a":[1`, err: true},
		"ArraySep":     {reason: "Array elements need a ','.", in: `{"a":[1 2]}`, err: true},
		"ObjectSep":    {reason: "Members need a ','.", in: `{"a":1 "b":2}`, err: true},
		"Control":      {reason: "A raw control character in a string is an error.", in: "{\"a\":\"\x01\"}", err: true},
		"BadUTF8":      {reason: "Invalid UTF-8 is replaced, as encoding/json does.", in: "{\"a\":\"\xff\"}"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := jsonToStruct([]byte(tc.in))
			if tc.err {
				if err == nil {
					t.Errorf("%s\njsonToStruct(%q): want an error, got %v", tc.reason, tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s\njsonToStruct(%q): %v", tc.reason, tc.in, err)
			}
			want, err := reference([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("%s\njsonToStruct(%q): -want, +got:\n%s", tc.reason, tc.in, diff)
			}
		})
	}
}

// FuzzJSONToStruct checks the parser against the reference decoder: the
// same result for valid objects, an error (never a panic) otherwise.
func FuzzJSONToStruct(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,"x",{"b":null}]}`, `{"a":"\u00e9\/"}`, `{"n":-1.5e-3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := jsonToStruct(b)
		want, rerr := reference(b)
		if rerr != nil {
			return // The parser may be stricter or as lax; it must only not panic.
		}
		if err != nil {
			t.Fatalf("jsonToStruct(%q): %v; the reference decoder accepts it", b, err)
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Fatalf("jsonToStruct(%q): -want, +got:\n%s", b, diff)
		}
	})
}
