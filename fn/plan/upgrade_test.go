package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSequence(t *testing.T) {
	kcp := func(v string) *ControlPlane { return &ControlPlane{Kind: "KubeadmControlPlane", Name: "c", Version: v} }
	type want struct {
		version string
		pending bool
	}
	cases := map[string]struct {
		reason  string
		target  string
		current string
		cp      *ControlPlane
		want    want
	}{
		"ControlPlaneThere":   {reason: "The control plane runs the target: the pool moves.", target: "v1.34.1", current: "v1.33.4", cp: kcp("v1.34.1"), want: want{"v1.34.1", false}},
		"ControlPlaneBehind":  {reason: "The control plane is behind: the pool holds its version.", target: "v1.34.1", current: "v1.33.4", cp: kcp("v1.33.4"), want: want{"v1.33.4", true}},
		"PatchBehind":         {reason: "A newer patch waits for the control plane's patch too.", target: "v1.33.5", current: "v1.33.4", cp: kcp("v1.33.4"), want: want{"v1.33.4", true}},
		"NewPoolCPBehind":     {reason: "A new pool starts at the control plane's version.", target: "v1.34.1", cp: kcp("v1.33.4"), want: want{"v1.33.4", true}},
		"UnknownControlPlane": {reason: "Without a control-plane version, nothing holds.", target: "v1.34.1", current: "v1.33.4", cp: kcp(""), want: want{"v1.34.1", false}},
		"NoControlPlane":      {reason: "Without a control plane known, nothing holds.", target: "v1.34.1", current: "v1.33.4", want: want{"v1.34.1", false}},
		"EKSMinorOnly":        {reason: "EKS reports a minor: patches do not compare.", target: "v1.34.2", current: "v1.34.1", cp: kcp("1.34"), want: want{"v1.34.2", false}},
		"EKSMinorBehind":      {reason: "EKS behind by a minor holds the pool.", target: "v1.34.2", current: "v1.33.4", cp: kcp("1.33"), want: want{"v1.33.4", true}},
		"CurrentAheadOfCP":    {reason: "A pool already ahead (never by this function) is brought to the control plane's version.", target: "v1.34.1", current: "v1.34.0", cp: kcp("v1.33.4"), want: want{"v1.33.4", true}},
		"DowngradeIsNotHeld":  {reason: "An older target is not held.", target: "v1.32.9", current: "v1.33.4", cp: kcp("v1.33.4"), want: want{"v1.32.9", false}},
		"ControlPlaneGarbage": {reason: "An unparsable control-plane version holds nothing.", target: "v1.34.1", current: "v1.33.4", cp: kcp("latest"), want: want{"v1.34.1", false}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v, p := sequence(tc.target, tc.current, tc.cp)
			if diff := cmp.Diff(tc.want, want{v, p != nil}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nsequence(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestUpgradeHeldThenReleased checks the whole pool: held while the control
// plane is behind, released once it arrives.
func TestUpgradeHeldThenReleased(t *testing.T) {
	v1 := mustPlan(t, input())
	obs := observe(t, v1, 2)
	for k, o := range obs {
		if isBacking(k) {
			o.Version = "v1.33.4"
			obs[k] = o
		}
	}
	bump := func(in *Input) {
		in.Policy.Channels["stable"] = "v1.34.1"
		in.Observed = obs
		in.MachineSets = map[string][]MachineSet{}
	}
	held := mustPlan(t, input(bump, func(in *Input) {
		in.ControlPlane = &ControlPlane{Kind: "KubeadmControlPlane", Name: "prod-eu-1", Version: "v1.33.4"}
	}))
	if held.UpgradePending == nil || held.Status.Version != "v1.33.4" || held.Status.TargetVersion != "v1.34.1" {
		t.Errorf("control plane behind: want the pool held at v1.33.4 with target v1.34.1, got version %s target %s pending %v",
			held.Status.Version, held.Status.TargetVersion, held.UpgradePending)
	}
	if diff := cmp.Diff(summarize(t, v1).Templates, summarize(t, held).Templates); diff != "" {
		t.Errorf("a held pool keeps its templates (the policy's AMI for v1.34.1 must not be used yet): -before, +held:\n%s", diff)
	}
	released := mustPlan(t, input(bump, func(in *Input) {
		in.ControlPlane = &ControlPlane{Kind: "KubeadmControlPlane", Name: "prod-eu-1", Version: "v1.34.1"}
	}))
	if released.UpgradePending != nil || released.Status.Version != "v1.34.1" {
		t.Errorf("control plane arrived: want the pool at v1.34.1, got %s (pending %v)", released.Status.Version, released.UpgradePending)
	}
}
