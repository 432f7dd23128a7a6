package fleetsim

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

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
			cfg := Config{Clusters: 6, PoolsPerCluster: 5, Seed: 1, MaxSteps: 40, Lag: 0.2, CacheSize: -1, StopAtViolation: true}
			rep, err := run(context.Background(), cfg, ungated(), func(fn runner) runner { return broken{fn: fn, alter: tc.alter} })
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

// A misinformed function is the real one handed each request with a gate
// taken out first: it cannot know of the gate, and breaks it.
type misinformed struct {
	fn    runner
	alter func(req *fnv1.RunFunctionRequest)
}

func (m misinformed) RunFunction(ctx context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	req = proto.CloneOf(req) // Crossplane's model keeps the request.
	m.alter(req)
	return m.fn.RunFunction(ctx, req)
}

// deleteField deletes a field of a Struct, if the Struct exists.
func deleteField(s *structpb.Struct, k string) {
	if s != nil {
		delete(s.GetFields(), k)
	}
}

// metadataOf is an object's metadata field k (labels, annotations).
func metadataOf(o *structpb.Struct, k string) *structpb.Struct {
	return at(o, "metadata", k).GetStructValue()
}

// requiredOf are the required resources of a kind in the request.
func requiredOf(req *fnv1.RunFunctionRequest, kind string) []*structpb.Struct {
	var out []*structpb.Struct
	for _, rs := range req.GetRequiredResources() {
		for _, r := range rs.GetItems() {
			if stringAt(r.GetResource(), "kind") == kind {
				out = append(out, r.GetResource())
			}
		}
	}
	return out
}

// TestGatesBrokenAreCaught takes one gate out of every request at a time,
// on a schedule where that gate alone holds pools, runs the simulation until
// its first violation, and requires it to be of the gate's rule; the same
// schedule with the real function, unbroken, must not break that rule: the
// gates hold in the model, and the invariants see it when they do not.
func TestGatesBrokenAreCaught(t *testing.T) {
	cases := map[string]struct {
		reason   string
		schedule func(s *schedule)
		alter    func(req *fnv1.RunFunctionRequest)
		want     invariant.Rule
	}{
		"IgnoresPause": {
			reason:   "A function that does not see the policy's pause starts rollouts while the fleet is paused.",
			schedule: func(s *schedule) { s.pauses = map[int]bool{6: true, 12: false} },
			alter: func(req *fnv1.RunFunctionRequest) {
				deleteField(at(req.GetInput(), "rollouts").GetStructValue(), "paused")
			},
			want: invariant.NoStartWhileHeld,
		},
		"IgnoresPausedChannel": {
			reason:   "A function that does not see a paused channel starts rollouts of its pools.",
			schedule: func(s *schedule) { s.channelPauses = map[int][]string{6: {poolChannel}, 12: nil} },
			alter: func(req *fnv1.RunFunctionRequest) {
				deleteField(at(req.GetInput(), "rollouts").GetStructValue(), "pausedChannels")
			},
			want: invariant.NoStartWhileHeld,
		},
		"IgnoresWindows": {
			reason: "A function that does not see maintenance windows starts rollouts while they are closed.",
			schedule: func(s *schedule) {
				d := defaultSchedule()
				s.gates.windows, s.gates.defaultWindow, s.poolWindow = d.gates.windows, d.gates.defaultWindow, d.poolWindow
				s.clusterWindow = map[int]string{1: "evening", 2: "tokyo-morning"}
			},
			alter: func(req *fnv1.RunFunctionRequest) {
				r := at(req.GetInput(), "rollouts").GetStructValue()
				deleteField(r, "maintenanceWindows")
				deleteField(r, "defaultMaintenanceWindow")
				deleteField(metadataOf(req.GetObserved().GetComposite().GetResource(), "labels"), labelWindow)
				for _, c := range requiredOf(req, kindCluster) {
					deleteField(metadataOf(c, "labels"), labelWindow)
				}
			},
			want: invariant.NoStartWhileHeld,
		},
		"IgnoresDeferral": {
			reason:   "A function that does not see a pool's defer-rollout annotation starts its rollout.",
			schedule: func(s *schedule) { s.defers, s.undefer = map[int]float64{2: 0.5}, 20 },
			alter: func(req *fnv1.RunFunctionRequest) {
				deleteField(metadataOf(req.GetObserved().GetComposite().GetResource(), "annotations"), annotationDefer)
			},
			want: invariant.NoStartWhileHeld,
		},
		"IgnoresSequenceHold": {
			reason: "A function that does not see a pool's hold-rollout-sequence annotation starts the pool's rollout.",
			schedule: func(s *schedule) {
				s.gates.concurrency, s.clusterConcurrency = 2, map[int]string{0: "2", 1: "2", 2: "2", 3: "2"}
				s.holdSequence, s.holdIn, s.holdFrom, s.holdUntil = "pool-00", "2", 2, 20
			},
			alter: func(req *fnv1.RunFunctionRequest) {
				deleteField(metadataOf(req.GetObserved().GetComposite().GetResource(), "annotations"), annotationHoldSeq)
			},
			want: invariant.NoStartWhileHeld,
		},
		"IgnoresConcurrency": {
			reason:   "A function told its Cluster allows 100 pools rolling at once rolls more than the Cluster's one.",
			schedule: func(s *schedule) { s.gates.concurrency = 1 },
			alter: func(req *fnv1.RunFunctionRequest) {
				for _, c := range requiredOf(req, kindCluster) {
					md := at(c, "metadata").GetStructValue()
					a := with(metadataOf(c, "annotations"), annotationConcurrency, str("100"))
					md.GetFields()["annotations"] = structpb.NewStructValue(a)
				}
			},
			want: invariant.ConcurrencyBounded,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := ungated()
			tc.schedule(&s)
			cfg := Config{Clusters: 4, PoolsPerCluster: 4, Seed: 1, MaxSteps: 40, Lag: 0.2, CacheSize: -1}
			firstViolationIs(t, tc.reason, cfg, s, tc.alter, tc.want)
			// The same schedule, the function unbroken, past the gate's events.
			cfg.MaxSteps = 24
			unbrokenBreaksNone(t, tc.reason, cfg, s, tc.want)
		})
	}
}

// firstViolationIs runs the schedule with the function misinformed by
// alter until the first check that finds a violation, and requires one
// found, each of rule want.
func firstViolationIs(t *testing.T, reason string, cfg Config, s schedule, alter func(*fnv1.RunFunctionRequest), want invariant.Rule) {
	t.Helper()
	cfg.StopAtViolation = true
	rep, err := run(context.Background(), cfg, s, func(fn runner) runner { return misinformed{fn: fn, alter: alter} })
	if err != nil {
		t.Fatalf("%s\nrun(...): %v", reason, err)
	}
	if len(rep.Violations) == 0 {
		t.Errorf("%s\nrun(...): no violation in %d steps, want a %s violation", reason, rep.Steps, want)
	} else {
		t.Logf("first violation: %s", rep.Violations[0])
	}
	for _, v := range rep.Violations {
		if v.Rule != want {
			t.Errorf("%s\nrun(...): at step %d, the first violations found include %s, want only %s violations", reason, rep.Steps-1, v, want)
		}
	}
}

// unbrokenBreaksNone runs the schedule with the function unbroken and
// fails on a violation of the rule a broken variant was caught breaking.
func unbrokenBreaksNone(t *testing.T, reason string, cfg Config, s schedule, rule invariant.Rule) {
	t.Helper()
	rep, err := run(context.Background(), cfg, s, nil)
	if err != nil {
		t.Fatalf("%s\nrun(...) unbroken: %v", reason, err)
	}
	for _, v := range rep.Violations {
		if v.Rule == rule {
			t.Errorf("%s\nrun(...) unbroken: %s", reason, v)
		}
	}
}
