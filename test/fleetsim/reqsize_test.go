package fleetsim

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

func TestFieldNumbers(t *testing.T) {
	cases := map[string]struct {
		reason string
		msg    proto.Message
		field  protoreflect.Name
		want   protowire.Number
	}{
		"Observed":  {reason: "The request's observed state.", msg: &fnv1.RunFunctionRequest{}, field: "observed", want: fieldObserved},
		"Input":     {reason: "The request's input.", msg: &fnv1.RunFunctionRequest{}, field: "input", want: fieldInput},
		"Required":  {reason: "The request's required resources.", msg: &fnv1.RunFunctionRequest{}, field: "required_resources", want: fieldRequired},
		"Composite": {reason: "The state's composite.", msg: &fnv1.State{}, field: "composite", want: fieldComposite},
		"Resources": {reason: "The state's composed resources.", msg: &fnv1.State{}, field: "resources", want: fieldResources},
		"Resource":  {reason: "A resource's object.", msg: &fnv1.Resource{}, field: "resource", want: fieldResource},
		"Items":     {reason: "A list's items.", msg: &fnv1.Resources{}, field: "items", want: fieldItems},
		"MapKey":    {reason: "A map entry's key.", msg: &fnv1.State{}, field: "resources", want: fieldMapKey},
		"MapValue":  {reason: "A map entry's value.", msg: &fnv1.State{}, field: "resources", want: fieldMapValue},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := tc.msg.ProtoReflect().Descriptor().Fields().ByName(tc.field)
			got := f.Number()
			switch name {
			case "MapKey":
				got = f.MapKey().Number()
			case "MapValue":
				got = f.MapValue().Number()
			}
			if got != tc.want {
				t.Errorf("%s\nfield number of %s: got %d, want %d", tc.reason, tc.field, got, tc.want)
			}
		})
	}
}

// sizeChecker checks the requests' sizes as the meter measures them
// against proto.Size.
type sizeChecker struct {
	fn         runner
	sizes      *requestSizes
	calls      int
	withMarker int
	wrong      []string
}

func (c *sizeChecker) RunFunction(ctx context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	c.calls++
	c.sizes.reset()
	if got, want := c.sizes.size(req), proto.Size(req); got != want && len(c.wrong) < 5 {
		c.wrong = append(c.wrong, stringAt(req.GetObserved().GetComposite().GetResource(), "metadata", "name"))
		c.wrong = append(c.wrong, fmt.Sprintf("got %d, want %d", got, want))
	}
	if len(requiredOf(req, kindConfigMap)) > 0 {
		c.withMarker++
	}
	return c.fn.RunFunction(ctx, req)
}

// TestRequestSize holds the meter's request sizes to proto.Size, on every
// request of a fleet rolling in waves: requests with markers among them.
func TestRequestSize(t *testing.T) {
	c := &sizeChecker{sizes: &requestSizes{}}
	cfg := Config{Clusters: 11, PoolsPerCluster: 2, Seed: 1, MaxSteps: 12, Lag: 0.2, CacheSize: -1}
	if _, err := run(context.Background(), cfg, wavesSchedule(), func(fn runner) runner { c.fn = fn; return c }); err != nil {
		t.Fatalf("run(...): %v", err)
	}
	if len(c.wrong) > 0 {
		t.Errorf("size(req) differs from proto.Size(req): %v", c.wrong)
	}
	if c.withMarker == 0 {
		t.Errorf("none of %d requests had rollout markers, want some sized", c.calls)
	}
}
