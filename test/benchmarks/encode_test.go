package benchmarks

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
	"k8s.io/apimachinery/pkg/runtime"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/fn/compose"
)

// This file weighs the function's encoding of composed objects
// (compose.ToStruct: JSON with encoding/json's omitempty, then its own
// JSON→structpb parser) against the two encodings the libraries offer:
// apimachinery's DefaultUnstructuredConverter then structpb.NewStruct, and
// encoding/json then protojson. Every path drops what a composed resource
// must not carry (status, metadata.creationTimestamp), as ToStruct does.

// An encoder encodes a typed object as a composed resource.
type encoder struct {
	name   string
	encode func(any) (*structpb.Struct, error)
}

var encoders = []encoder{
	{"ToStruct", compose.ToStruct},
	{"unstructured", func(v any) (*structpb.Struct, error) {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(v)
		if err != nil {
			return nil, err
		}
		s, err := structpb.NewStruct(m)
		return trim(s), err
	}},
	{"json-protojson", func(v any) (*structpb.Struct, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		s := &structpb.Struct{}
		if err := protojson.Unmarshal(b, s); err != nil {
			return nil, err
		}
		return trim(s), nil
	}},
}

// trim drops status and metadata.creationTimestamp, as ToStruct does.
func trim(s *structpb.Struct) *structpb.Struct {
	delete(s.GetFields(), "status")
	delete(s.GetFields()["metadata"].GetStructValue().GetFields(), "creationTimestamp")
	return s
}

// Variants of the example pool whose templates exercise omitempty.
var variants = []struct {
	name  string
	edits []edit
}{
	{name: "on-demand"},
	{name: "spot", edits: []edit{func(xr, _ *structpb.Struct) {
		xr.Fields["spec"].GetStructValue().Fields["machine"].GetStructValue().Fields["spot"] = structpb.NewBoolValue(true)
	}}},
	{name: "empty-ssh-key", edits: []edit{func(_, policy *structpb.Struct) {
		policy.Fields["aws"].GetStructValue().Fields["sshKeyName"] = structpb.NewStringValue("")
	}}},
}

// typedObjects are the typed objects the function composes for the
// example pool with the edits, by kind: its response's desired objects
// decoded into their upstream Go types.
func typedObjects(tb testing.TB, edits ...edit) map[string]any {
	tb.Helper()
	rsp := run(tb, typicalPool(tb, fixture{name: "realistic", realistic: true}, edits...))
	out := map[string]any{}
	for _, r := range rsp.GetDesired().GetResources() {
		o := r.GetResource()
		var v any
		switch k := str(o, "kind"); k {
		case "MachineDeployment":
			if _, ok := out[k]; ok {
				continue // One of the zones.
			}
			v = &clusterv1.MachineDeployment{}
		case "MachineHealthCheck":
			v = &clusterv1.MachineHealthCheck{}
		case "AWSMachineTemplate":
			v = &infrav1.AWSMachineTemplate{}
		case "KubeadmConfigTemplate":
			v = &bootstrapv1.KubeadmConfigTemplate{}
		default:
			tb.Fatalf("unexpected composed kind %s", k)
		}
		b, err := protojson.Marshal(o)
		if err != nil {
			tb.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			tb.Fatal(err)
		}
		out[str(o, "kind")] = v
	}
	return out
}

// TestEncodingsAgree reports where the library encodings differ from
// ToStruct on the objects the function composes.
func TestEncodingsAgree(t *testing.T) {
	for _, vr := range variants {
		objs := typedObjects(t, vr.edits...)
		for _, kind := range slices.Sorted(maps.Keys(objs)) {
			want, err := compose.ToStruct(objs[kind])
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range encoders[1:] {
				t.Run(vr.name+"/"+kind+"/"+e.name, func(t *testing.T) {
					got, err := e.encode(objs[kind])
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
						t.Errorf("%s encodes a %s %s other than ToStruct (-ToStruct +%s):\n%s", e.name, vr.name, kind, e.name, diff)
					}
				})
			}
		}
	}
}

// BenchmarkEncode encodes each typed object the function composes for the
// example pool on each path.
func BenchmarkEncode(b *testing.B) {
	for _, vr := range variants[:2] {
		objs := typedObjects(b, vr.edits...)
		for _, kind := range slices.Sorted(maps.Keys(objs)) {
			for _, e := range encoders {
				b.Run(vr.name+"/"+kind+"/enc="+e.name, func(b *testing.B) {
					measure(b, func() error {
						_, err := e.encode(objs[kind])
						return err
					})
				})
			}
		}
	}
}
