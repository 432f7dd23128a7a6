package fleetsim

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

// Flags size the waves' fleet: the defaults are CI-sized; issue #14's size
// is -waves.clusters=1000 -waves.pools=10 (10,000 pools).
var (
	flagWaveClusters = flag.Int("waves.clusters", 20, "clusters of the fleet rolled in waves")
	flagWavePools    = flag.Int("waves.pools", 3, "FleetNodePools per cluster of the fleet rolled in waves")
)

// TestWaves rolls a channel bump through three waves (canary, staging, the
// rest) with a failing canary pool, with the real function in the loop, and
// requires no invariant violated (WaveOrder and HaltRespected among them,
// judged by the model from the machines), a converged fleet, the waves
// halted while the canary failed, and each wave started only after the one
// before was at the target and soaked.
func TestWaves(t *testing.T) {
	cfg := Config{Clusters: *flagWaveClusters, PoolsPerCluster: *flagWavePools, Seed: *flagSeed, MaxSteps: 120, Lag: *flagLag, CacheSize: *flagCache, SizeRequests: true}
	s := wavesSchedule()
	rep := simulate(t, "fleet in waves", cfg, s)
	if rep.HaltedSteps == 0 || rep.HeldBy["Halted"] == 0 {
		t.Errorf("the failing canary halted the waves in %d steps of the model and %d reconciles of the function, want both some", rep.HaltedSteps, rep.HeldBy["Halted"])
	}
	// Each wave starts after the one before settled and soaked, which
	// happens after the canary recovered.
	if _, ok := rep.WaveStarts["canary"]; !ok {
		t.Errorf("wave canary never started a rollout")
	}
	for _, pair := range [][2]string{{"canary", "staging"}, {"staging", noWave}} {
		prev, name := pair[0], pair[1]
		start, ok := rep.WaveStarts[name]
		if !ok {
			t.Errorf("wave %s never started a rollout", name)
			continue
		}
		settled, ok := rep.WaveSettled[prev]
		if !ok || start < settled {
			t.Errorf("wave %s started at step %d, before wave %s was at the target and soaked (step %d, known %t)", name, start, prev, settled, ok)
		}
		if start < s.failUntil {
			t.Errorf("wave %s started at step %d, before the failing canary recovered at step %d", name, start, s.failUntil)
		}
	}
}

// TestWavesBrokenAreCaught hands the real function requests with the waves
// misreported, one way at a time, runs the waves' schedule until the first
// violation, and requires it to be of the rule the misreport breaks; the
// same schedule with the function told the truth breaks neither rule: the
// waves hold in the model, and the invariants see it when they do not.
func TestWavesBrokenAreCaught(t *testing.T) {
	cases := map[string]struct {
		reason string
		alter  func(req *fnv1.RunFunctionRequest)
		want   invariant.Rule
	}{
		"IgnoresWaves": {
			reason: "A function not told of the waves starts the later waves' pools while the canary rolls.",
			alter: func(req *fnv1.RunFunctionRequest) {
				deleteField(at(req.GetInput(), "rollouts").GetStructValue(), "waves")
			},
			want: invariant.WaveOrder,
		},
		"IgnoresHalt": {
			reason: "A function told the halt tolerates every pool failing starts the later waves past the failed canary pool.",
			alter: func(req *fnv1.RunFunctionRequest) {
				h := at(req.GetInput(), "rollouts", "halt").GetStructValue()
				h.GetFields()["tolerance"] = str("100%")
			},
			want: invariant.HaltRespected,
		},
		"FailedLooksSettled": {
			reason: "A function shown the failed canary pool's marker as settled (since it started) starts the later waves.",
			alter: func(req *fnv1.RunFunctionRequest) {
				for _, m := range requiredOf(req, kindConfigMap) {
					d := at(m, "data").GetStructValue().GetFields()
					if d["state"].GetStringValue() == "Failed" {
						d["state"], d["since"] = str("Settled"), d["startedAt"]
						delete(d, "startedAt")
					}
				}
			},
			want: invariant.HaltRespected,
		},
	}
	cfg := Config{Clusters: 11, PoolsPerCluster: 3, Seed: 1, MaxSteps: 60, Lag: 0.2, CacheSize: -1}
	rep, err := run(context.Background(), cfg, wavesSchedule(), nil)
	if err != nil {
		t.Fatalf("run(...) unbroken: %v", err)
	}
	for _, v := range rep.Violations {
		if v.Rule == invariant.WaveOrder || v.Rule == invariant.HaltRespected {
			t.Errorf("run(...) unbroken: %s", v)
		}
	}
	if rep.HaltedSteps == 0 {
		t.Errorf("run(...) unbroken: the waves never halted, want the failing canary to halt them")
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) { firstViolationIs(t, tc.reason, cfg, wavesSchedule(), tc.alter, tc.want) })
	}
}

// marker is a rollout marker as the function desires it.
func marker(p *pool, fleet, wave, state string) *fnv1.Resource {
	return &fnv1.Resource{Resource: &structpb.Struct{Fields: map[string]*structpb.Value{
		"apiVersion": str(apiVersionV1), "kind": str(kindConfigMap),
		"metadata": obj(map[string]*structpb.Value{
			"name": str(p.cluster + "-" + p.name + "-rollout"), "namespace": str(p.namespace),
			"labels": strMap(map[string]string{labelFleet: fleet, labelWave: wave, labelPool: p.name, labelClusterName: p.cluster}),
		}),
		"data": strMap(map[string]string{"target": "t1", "state": state}),
	}}}
}

// TestFetchMarkers checks the Crossplane model's ConfigMaps: the rollout
// markers the function composes are applied with their labels and data,
// and selected by labels in every namespace (or one), sorted by namespace
// and name, or by name; a relabelled marker moves, a deleted one goes.
func TestFetchMarkers(t *testing.T) {
	type item struct{ Namespace, Name, State string }
	sel := func(namespace string, labels map[string]string) *fnv1.ResourceSelector {
		s := &fnv1.ResourceSelector{ApiVersion: apiVersionV1, Kind: kindConfigMap,
			Match: &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{Labels: labels}}}
		if namespace != "" {
			s.Namespace = &namespace
		}
		return s
	}
	canary := map[string]string{labelFleet: fleetName, labelWave: "canary"}
	cases := map[string]struct {
		reason string
		edit   func(w *world, ps []*pool) error
		sel    *fnv1.ResourceSelector
		want   []item
	}{
		"AllNamespaces": {
			reason: "A selector without a namespace selects the wave's markers in every namespace, sorted by namespace and name, with their data.",
			sel:    sel("", canary),
			want:   []item{{"fleet-0000", "c-0000-pool-00-rollout", "Settled"}, {"fleet-0000", "c-0000-pool-01-rollout", "Rolling"}, {"fleet-0001", "c-0001-pool-00-rollout", "Failed"}},
		},
		"OneNamespace": {
			reason: "A selector with a namespace selects those of that namespace.",
			sel:    sel("fleet-0001", canary),
			want:   []item{{"fleet-0001", "c-0001-pool-00-rollout", "Failed"}},
		},
		"OtherWave": {
			reason: "Another wave's markers are not selected.",
			sel:    sel("", map[string]string{labelFleet: fleetName, labelWave: "staging"}),
			want:   []item{{"fleet-0002", "c-0002-pool-00-rollout", "Settled"}},
		},
		"OtherFleet": {
			reason: "Nor are another fleet's.",
			sel:    sel("", map[string]string{labelFleet: "other", labelWave: "canary"}),
			want:   []item{},
		},
		"OnePool": {
			reason: "Other labels narrow the selection.",
			sel:    sel("", map[string]string{labelFleet: fleetName, labelPool: "pool-01"}),
			want:   []item{{"fleet-0000", "c-0000-pool-01-rollout", "Rolling"}},
		},
		"ByName": {
			reason: "A selector by name in a namespace selects that marker.",
			sel: &fnv1.ResourceSelector{ApiVersion: apiVersionV1, Kind: kindConfigMap, Namespace: ptr("fleet-0001"),
				Match: &fnv1.ResourceSelector_MatchName{MatchName: "c-0001-pool-00-rollout"}},
			want: []item{{"fleet-0001", "c-0001-pool-00-rollout", "Failed"}},
		},
		"Relabelled": {
			reason: "A marker applied again in another wave leaves its old wave's selection, with its new data.",
			edit: func(w *world, ps []*pool) error {
				return w.applyOne(ps[1], "rollout", marker(ps[1], fleetName, "staging", "Settled"))
			},
			sel:  sel("", canary),
			want: []item{{"fleet-0000", "c-0000-pool-00-rollout", "Settled"}, {"fleet-0001", "c-0001-pool-00-rollout", "Failed"}},
		},
		"Deleted": {
			reason: "A marker the function no longer desires is deleted.",
			edit:   func(w *world, ps []*pool) error { w.remove(ps[0], "rollout"); return nil },
			sel:    sel("", canary),
			want:   []item{{"fleet-0000", "c-0000-pool-01-rollout", "Rolling"}, {"fleet-0001", "c-0001-pool-00-rollout", "Failed"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w, err := newWorld(1, ladder[0])
			if err != nil {
				t.Fatal(err)
			}
			var ps []*pool
			for i, m := range []struct{ cluster, pool, wave, state string }{
				{"0000", "pool-00", "canary", "Settled"}, {"0000", "pool-01", "canary", "Rolling"},
				{"0001", "pool-00", "canary", "Failed"}, {"0002", "pool-00", "staging", "Settled"},
			} {
				c := w.byNS["fleet-"+m.cluster]
				if c == nil {
					c = w.addCluster("c-"+m.cluster, "fleet-"+m.cluster, ladder[0])
				}
				p := w.addPool(c, m.pool, poolSpec{})
				// Fetched once before this apply: a list made before a change must not be served after it.
				_ = w.fetch(sel("", canary))
				if err := w.applyOne(p, "rollout", marker(p, fleetName, m.wave, m.state)); err != nil {
					t.Fatalf("applyOne(marker %d): %v", i, err)
				}
				ps = append(ps, p)
			}
			if tc.edit != nil {
				_ = w.fetch(tc.sel)
				if err := tc.edit(w, ps); err != nil {
					t.Fatalf("%s\nedit: %v", tc.reason, err)
				}
			}
			got := []item{}
			for _, r := range w.fetch(tc.sel).GetItems() {
				o := r.GetResource()
				got = append(got, item{stringAt(o, "metadata", "namespace"), stringAt(o, "metadata", "name"), stringAt(o, "data", "state")})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nfetch(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestJudgeWaves checks the model's own judgement of the waves, from the
// machines: which pools the earlier waves hold, which they halt.
func TestJudgeWaves(t *testing.T) {
	// A pool's state: at the target for so long, or rolling since so long.
	type state struct {
		atTarget bool
		since    time.Duration
	}
	type judged struct{ Held, Halted []string }
	staging, last := "fleet-0001/pool-00", "fleet-0002/pool-00"
	cases := map[string]struct {
		reason string
		states [3]state // canary, staging, the rest.
		want   judged
	}{
		"AllSoaked": {
			reason: "Earlier waves at the target and soaked hold nothing.",
			states: [3]state{{true, 3 * time.Hour}, {true, 3 * time.Hour}, {false, 0}},
			want:   judged{Held: []string{}, Halted: []string{}},
		},
		"CanaryRolling": {
			reason: "A canary pool rolling (not past the halt timeout) holds every later wave.",
			states: [3]state{{false, time.Hour}, {true, 3 * time.Hour}, {false, 0}},
			want:   judged{Held: []string{staging, last}, Halted: []string{}},
		},
		"CanarySoaking": {
			reason: "A canary pool at the target for less than its soak holds every later wave.",
			states: [3]state{{true, time.Hour}, {true, 3 * time.Hour}, {false, 0}},
			want:   judged{Held: []string{staging, last}, Halted: []string{}},
		},
		"CanaryFailed": {
			reason: "A canary pool not at the target the halt timeout after it started halts every later wave (tolerance 0), without holding them besides.",
			states: [3]state{{false, 12 * time.Hour}, {true, 3 * time.Hour}, {false, 0}},
			want:   judged{Held: []string{}, Halted: []string{staging, last}},
		},
		"StagingRolling": {
			reason: "A staging pool rolling holds the pools in no wave alone.",
			states: [3]state{{true, 3 * time.Hour}, {false, time.Hour}, {false, 0}},
			want:   judged{Held: []string{last}, Halted: []string{}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w, err := newWorld(1, ladder[1])
			if err != nil {
				t.Fatal(err)
			}
			w.step = 40
			s := wavesSchedule()
			w.gates = s.gates
			for i, wave := range []string{"canary", "staging", ""} {
				c := w.addCluster(fmt.Sprintf("c-%04d", i), fmt.Sprintf("fleet-%04d", i), ladder[1])
				if wave != "" {
					c.labels[labelRolloutWave] = wave
				}
				p := w.addPool(c, "pool-00", poolSpec{})
				st := tc.states[i]
				version := ladder[0]
				if st.atTarget {
					version = ladder[1]
					w.waves.convergedSince[p] = w.now().Add(-st.since)
				} else if st.since > 0 {
					w.waves.startedAt[p] = w.now().Add(-st.since)
				}
				tmpl := machineTemplate{version: version}
				o := addComposed(w, p, "md", kindMachineDeployment, c.name+"-md", &mdSpec{replicas: 1, template: tmpl})
				ms := w.addMachineSet(c.namespace, o.id.name, nil, tmpl)
				ms.replicas, ms.ready = 1, 1
			}
			w.judgeWaves()
			got := judged{Held: sortedKeys(w.waves.held), Halted: sortedKeys(w.waves.halted)}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\njudgeWaves(): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
