package compose

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
)

// FuzzRunFunction drives decoding and planning with arbitrary FleetNodePools
// and policies. The function must never panic (it runs without its guard
// against panics here), and every validation error must name a field of the
// FleetNodePool (spec, metadata) or of the policy (input).
func FuzzRunFunction(f *testing.F) {
	f.Add([]byte(xrJSON), []byte(policyJSON))
	f.Add([]byte(legacyXRJSON), []byte(policyJSON))
	// Every example's FleetNodePool and policy.
	xrs, _ := filepath.Glob("../../examples/*/xr.yaml")
	for _, x := range xrs {
		dir := filepath.Dir(x)
		xr, err1 := yamlToJSON(x, nil)
		pol, err2 := yamlToJSON(filepath.Join(dir, "composition.yaml"), []string{"spec", "pipeline"})
		if err1 == nil && err2 == nil {
			f.Add(xr, pol)
		}
	}
	f.Fuzz(func(t *testing.T, xr, policy []byte) {
		xs, ps := &structpb.Struct{}, &structpb.Struct{}
		if xs.UnmarshalJSON(xr) != nil || ps.UnmarshalJSON(policy) != nil {
			return
		}
		req := newRequest(xrJSON, "")
		req.Observed.Composite.Resource, req.Input = xs, ps
		fn := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), WithCacheSize(0))
		// A slow input is a bug too: fail with where it is stuck.
		watchdog := time.AfterFunc(2*time.Second, func() {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			fmt.Fprintf(os.Stderr, "slow input:\nxr: %s\npolicy: %s\n%s", xr, policy, buf[:n])
			os.Exit(2)
		})
		defer watchdog.Stop()
		rsp := fn.run(req)
		for _, r := range rsp.GetResults() {
			if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL && r.GetMessage() == "" {
				t.Fatalf("a Fatal result without a message")
			}
		}

		in, err := fn.decode(req, fn.waves(req))
		if err != nil {
			return
		}
		in.Cluster, _ = cluster(req)
		_, err = fn.planner.Plan(in)
		var invalid *plan.InvalidError
		if !errors.As(err, &invalid) {
			return
		}
		for _, e := range invalid.Errs {
			if !strings.HasPrefix(e.Field, "spec") && !strings.HasPrefix(e.Field, "input") && !strings.HasPrefix(e.Field, "metadata") {
				t.Fatalf("validation error without a field path of the FleetNodePool or policy: %v", e)
			}
		}
	})
}

// yamlToJSON reads a YAML file, optionally the first pipeline step's input
// under at, as JSON.
func yamlToJSON(path string, at []string) ([]byte, error) {
	b, err := os.ReadFile(path) //nolint:gosec // Test fixtures.
	if err != nil {
		return nil, err
	}
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if at != nil {
		m, _ := v.(map[string]any)
		for _, k := range at {
			m, _ = m[k].(map[string]any)
			if k == "pipeline" {
				steps, _ := v.(map[string]any)["spec"].(map[string]any)["pipeline"].([]any)
				if len(steps) == 0 {
					return nil, errors.New("no pipeline")
				}
				step, _ := steps[0].(map[string]any)
				m, _ = step["input"].(map[string]any)
			}
		}
		v = m
	}
	s, err := structpb.NewValue(v)
	if err != nil {
		return nil, err
	}
	return s.MarshalJSON()
}
