package fleetsim

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/fn/compose"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

// A broken function is the real one with its answers altered afterwards.
type broken struct {
	fn    runner
	alter func(req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse)
}

func (b broken) RunFunction(ctx context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	rsp, err := b.fn.RunFunction(ctx, req)
	if err != nil {
		return nil, err
	}
	// The function's cache shares its answers' objects: alter a copy.
	rsp = proto.CloneOf(rsp)
	b.alter(req, rsp)
	return rsp, nil
}

// desiredOf are the response's desired resources of a kind, by key.
func desiredOf(rsp *fnv1.RunFunctionResponse, kinds ...string) map[string]*structpb.Struct {
	out := map[string]*structpb.Struct{}
	for k, r := range rsp.GetDesired().GetResources() {
		for _, kind := range kinds {
			if stringAt(r.GetResource(), "kind") == kind {
				out[k] = r.GetResource()
			}
		}
	}
	return out
}

// TestBrokenFunctionsAreCaught breaks the function's answers one
// way at a time, runs the simulation until its first violation, and
// requires it to be of the rule broken: the fleet model can fail, not only
// its checker, and it tells the rules apart.
func TestBrokenFunctionsAreCaught(t *testing.T) {
	cases := map[string]struct {
		reason string
		alter  func(req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse)
		want   invariant.Rule
	}{
		"DropsTemplatesInUse": {
			reason: "A function that drops every template its MachineDeployments no longer point at deletes templates old MachineSets clone from.",
			alter: func(_ *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) {
				used := map[string]bool{}
				for _, md := range desiredOf(rsp, kindMachineDeployment) {
					used[stringAt(md, "spec", "template", "spec", "infrastructureRef", "name")] = true
					used[stringAt(md, "spec", "template", "spec", "bootstrap", "configRef", "name")] = true
				}
				for k, t := range desiredOf(rsp, "AWSMachineTemplate", "KubeadmConfigTemplate") {
					if !used[stringAt(t, "metadata", "name")] {
						delete(rsp.GetDesired().GetResources(), k)
					}
				}
			},
			want: invariant.TemplateExists,
		},
		"IgnoresControlPlane": {
			reason: "A function that moves workers to the channel's version at once runs them ahead of their control plane.",
			alter: func(req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) {
				v := stringAt(req.GetInput(), "channels", "stable")
				for _, md := range desiredOf(rsp, kindMachineDeployment) {
					at(md, "spec", "template", "spec").GetStructValue().GetFields()["version"] = str(v)
				}
			},
			want: invariant.WorkerNotNewer,
		},
		"OwnsAutoscaledSize": {
			reason: "A function that sets an autoscaled MachineDeployment's replicas fights the autoscaler.",
			alter: func(_ *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) {
				for _, md := range desiredOf(rsp, kindMachineDeployment) {
					if lo := stringAt(md, "metadata", "annotations", annotationMinSize); lo != "" {
						n, _ := atoi32(lo)
						at(md, "spec").GetStructValue().GetFields()["replicas"] = num(n)
					}
				}
			},
			want: invariant.ReplicasNotOwned,
		},
		"DropsARunningZone": {
			reason: "A function that stops emitting a zone's MachineDeployment once it exists deletes the nodes running there.",
			alter: func(req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) {
				for k := range desiredOf(rsp, kindMachineDeployment) {
					if _, exists := req.GetObserved().GetResources()[k]; exists && strings.HasSuffix(k, "eu-west-1c") {
						delete(rsp.GetDesired().GetResources(), k)
					}
				}
			},
			want: invariant.BackingKept,
		},
		"Fatal": {
			reason: "A Fatal result is reported.",
			alter: func(req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) {
				if stringAt(req.GetObserved().GetComposite().GetResource(), "metadata", "name") == "pool-00" {
					rsp.Results = append(rsp.Results, &fnv1.Result{Severity: fnv1.Severity_SEVERITY_FATAL, Message: "broken on purpose"})
				}
			},
			want: RuleFatal,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Clusters: 6, PoolsPerCluster: 5, Seed: 1, MaxSteps: 40, Lag: 0.2, StopAtViolation: true}
			rep, err := run(context.Background(), cfg, broken{fn: compose.New(compose.WithPlanner(plan.New(plan.WithProviders(providers.All()...)))), alter: tc.alter})
			if err != nil {
				t.Fatalf("%s\nrun(...): %v", tc.reason, err)
			}
			if len(rep.Violations) == 0 {
				t.Fatalf("%s\nrun(...): no violation in %d steps, want a %s violation", tc.reason, rep.Steps, tc.want)
			}
			// The simulation stopped at the first check that found
			// violations: each must be of the rule broken.
			for _, v := range rep.Violations {
				if v.Rule != tc.want {
					t.Errorf("%s\nrun(...): at step %d, the first violations found include %s, want only %s violations", tc.reason, rep.Steps-1, v, tc.want)
				}
			}
		})
	}
}
