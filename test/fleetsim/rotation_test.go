package fleetsim

import (
	"context"
	"flag"
	"math"
	"testing"
	"time"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/test/invariant"
)

// Flags of the rotation simulation. Its fleet is 12 x 5 pools unless
// -fleet.clusters or -fleet.pools is given; the full run is
// -fleet.clusters=1000 -fleet.pools=10 -rotation.max-age=720h
// -rotation.spread=72h -rotation.steps=1440 (10,000 pools over 60 days).
var (
	flagRotationMaxAge = flag.Duration("rotation.max-age", 48*time.Hour, "input.rotation.maxNodeAge of the rotation simulation")
	flagRotationSpread = flag.Duration("rotation.spread", 12*time.Hour, "input.rotation.spread of the rotation simulation")
	flagRotationSteps  = flag.Int("rotation.steps", 110, "steps (hours) of the rotation simulation")
	flagRotationQuiet  = flag.Bool("rotation.quiet", true, "reconcile a pool only when what it reads changed, its gates or its rotation due (Config.Quiet)")
)

// flagSet reports whether a flag was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// TestRotationModel gives a fleet whose pools are all created at step 0 a
// max node age (input.rotation: maxNodeAge M, spread S) under gates that
// hold rotations sometimes (rotationSchedule: a daily window closed W = 3h,
// concurrency 3, 2 in a tenth of the Clusters) and runs it long enough for
// two rotations of most pools (CI: M 48h, S 12h, 110 steps of an hour).
// It requires no invariant violated (a new spec.rollout.after starts a
// disruptive rollout, so NoRolloutStartWhileHeld and
// RolloutConcurrencyBounded cover rotations), every pool that runs
// machines rotated at least once, and two bounds. Let N be the pools, P a
// Cluster's, n = 2 the least concurrency, h = 1h a step, m the most
// machines of a MachineDeployment and R = 2(m+1) steps the longest
// rotation of one (m machines one a step at maxSurge 1, maxUnavailable 0
// take m+1 steps; at most half of them lost to Cluster API's lag):
//
//   - Node age. A MachineSet is due at its creation + M - S + the pool's
//     offset in [0, S), before M. From then its rotation waits at most for
//     the window (W) and the next reconcile (h), for the pools queued
//     before it in its Cluster (at most ceil((P-1)/n) rotations of R),
//     then runs (R): no machine runs longer than M + slack, slack = W + h
//   - (ceil((P-1)/n) + 1) R.
//   - Pools rotating at once. Offsets are spread evenly over S, so pools
//     fall due at N/S an hour (the later rotations, whose offsets add up,
//     slower); those due while the window is closed start when it opens,
//     and each rotates for D steps (the mean measured): at most N (W + h +
//     D) / S rotate at once, with a tolerance of 1.5 for the unevenness of
//     few pools' offsets; and never more than the Clusters' concurrency
//     allows, the sum over Clusters of min(concurrency, P).
//   - Rotation starts per step: those due while the window was closed and
//     in the step, N (W + h) / S, with the same tolerance and cap.
func TestRotationModel(t *testing.T) {
	clusters, pools := 12, 5
	if flagSet("fleet.clusters") || flagSet("fleet.pools") {
		clusters, pools = *flagClusters, *flagPools
	}
	maxAge, spread, steps := *flagRotationMaxAge, *flagRotationSpread, *flagRotationSteps
	cfg := Config{Clusters: clusters, PoolsPerCluster: pools, Seed: *flagSeed, MaxSteps: steps, CacheSize: *flagCache, Lag: *flagLag, Quiet: *flagRotationQuiet}
	rep, err := run(context.Background(), cfg, rotationSchedule(maxAge, spread, steps), nil)
	if err != nil {
		t.Fatalf("run(%+v): %v", cfg, err)
	}
	t.Logf("rotation simulation, %d clusters x %d pools (seed %d):\n%s", clusters, pools, cfg.Seed, rep.Table())
	for i, v := range rep.Violations {
		if i == 20 {
			t.Errorf("... and %d more violations", rep.ViolationCount-i)
			break
		}
		t.Errorf("violation: %s", v)
	}
	rt := rep.Rotation
	if len(rt.Unrotated) > 0 {
		t.Errorf("%d pools never rotated in %d steps, e.g. %v", len(rt.Unrotated), rep.Steps, rt.Unrotated[:min(len(rt.Unrotated), 5)])
	}
	b := rotationBounds(rep, pools)
	t.Logf("bounds: node age %s (slack %s), rotating at once %d, starts per step %d", maxAge+b.slack, b.slack, b.rotating, b.starts)
	if rt.OldestNode > maxAge+b.slack {
		t.Errorf("a machine of %s ran %s at step %d: longer than the max node age %s and the gates' slack %s", rt.OldestPool, rt.OldestNode, rt.OldestStep, maxAge, b.slack)
	}
	if rt.PeakRotating > b.rotating {
		t.Errorf("%d pools rotated at once at step %d: more than %d", rt.PeakRotating, rt.PeakRotatingStep, b.rotating)
	}
	if rt.PeakAsked > b.starts {
		t.Errorf("%d pools started a rotation at step %d: more than %d", rt.PeakAsked, rt.PeakAskedStep, b.starts)
	}
}

// rotationTolerance is how much the bounds of TestRotationModel allow for
// the unevenness of the pools' offsets.
const rotationTolerance = 1.5

// bounds are what TestRotationModel holds a rotation simulation to.
type bounds struct {
	slack            time.Duration
	rotating, starts int
}

// rotationBounds derives TestRotationModel's bounds for a report of the
// rotation schedule with pools pools a Cluster.
func rotationBounds(rep *Report, pools int) bounds {
	rt := rep.Rotation
	r := time.Duration(2*(rt.Largest+1)) * stepEvery
	queued := (pools - 1 + rotationConcurrency - 1) / rotationConcurrency
	slack := rotationWindowClosed + stepEvery + time.Duration(queued+1)*r
	// The fleet's cap: a tenth of the Clusters at 2, the rest at 3.
	capped := 0
	for i := range rep.Clusters {
		n := 3
		if i%10 == 2 {
			n = rotationConcurrency
		}
		capped += min(n, pools)
	}
	perHour := float64(rep.Pools) / rt.Spread.Hours()
	closed := rotationWindowClosed.Hours() + stepEvery.Hours()
	return bounds{
		slack:    slack,
		rotating: min(capped, int(math.Ceil(rotationTolerance*perHour*(closed+rt.MeanSteps)))),
		starts:   min(capped, int(math.Ceil(rotationTolerance*perHour*closed))),
	}
}

// TestRotationBrokenIsCaught breaks the rotations one way at a time on the
// rotation schedule (CI's max node age and spread, a smaller fleet), runs
// the simulation until its first violation, and requires it to be of the
// rule broken: the invariants see a rotation as the start of a disruptive
// rollout. The same schedule with the real function must not break the
// rule.
func TestRotationBrokenIsCaught(t *testing.T) {
	cases := map[string]struct {
		reason string
		// alter breaks the function's answers, misinform its requests.
		alter     func(req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse)
		misinform func(req *fnv1.RunFunctionRequest)
		want      invariant.Rule
	}{
		"RotatesAllAtOnce": {
			reason: "A function that sets every running MachineDeployment's spec.rollout.after just past its newest MachineSet rotates every pool at once, whatever the Cluster's concurrency.",
			alter: func(req *fnv1.RunFunctionRequest, rsp *fnv1.RunFunctionResponse) {
				newest := map[string]string{} // By MachineDeployment name; RFC 3339 sorts as time.
				for _, ms := range requiredOf(req, kindMachineSet) {
					md := stringAt(ms, "metadata", "labels", labelDeploymentName)
					newest[md] = max(newest[md], stringAt(ms, "metadata", "creationTimestamp"))
				}
				for _, md := range desiredOf(rsp, kindMachineDeployment) {
					created, err := time.Parse(time.RFC3339, newest[stringAt(md, "metadata", "name")])
					if err != nil {
						continue
					}
					r := at(md, "spec", "rollout").GetStructValue()
					r.GetFields()["after"] = str(created.Add(time.Second).Format(time.RFC3339))
				}
			},
			want: invariant.ConcurrencyBounded,
		},
		"IgnoresWindows": {
			reason: "A function that does not see the maintenance window rotates the pools that fall due while it is closed.",
			misinform: func(req *fnv1.RunFunctionRequest) {
				r := at(req.GetInput(), "rollouts").GetStructValue()
				deleteField(r, "maintenanceWindows")
				deleteField(r, "defaultMaintenanceWindow")
			},
			want: invariant.NoStartWhileHeld,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := rotationSchedule(48*time.Hour, 12*time.Hour, 60)
			cfg := Config{Clusters: 6, PoolsPerCluster: 5, Seed: 1, MaxSteps: 60, Lag: 0.2, CacheSize: -1, Quiet: true}
			if tc.misinform != nil {
				firstViolationIs(t, tc.reason, cfg, s, tc.misinform, tc.want)
			} else {
				cfg.StopAtViolation = true
				rep, err := run(context.Background(), cfg, s, func(fn runner) runner { return broken{fn: fn, alter: tc.alter} })
				if err != nil {
					t.Fatalf("%s\nrun(...): %v", tc.reason, err)
				}
				if len(rep.Violations) == 0 {
					t.Fatalf("%s\nrun(...): no violation in %d steps, want a %s violation", tc.reason, rep.Steps, tc.want)
				}
				t.Logf("first violation: %s", rep.Violations[0])
				for _, v := range rep.Violations {
					if v.Rule != tc.want {
						t.Errorf("%s\nrun(...): at step %d, the first violations found include %s, want only %s violations", tc.reason, rep.Steps-1, v, tc.want)
					}
				}
				cfg.StopAtViolation = false
			}
			unbrokenBreaksNone(t, tc.reason, cfg, s, tc.want)
		})
	}
}
