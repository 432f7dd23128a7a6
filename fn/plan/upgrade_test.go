package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSequence(t *testing.T) {
	kcp := func(v string) *ControlPlane { return &ControlPlane{Kind: "KubeadmControlPlane", Name: "c", Version: v} }
	type want struct {
		version string
		pending bool
		behind  bool
	}
	cases := map[string]struct {
		reason  string
		target  string
		current string
		cp      *ControlPlane
		kubeadm bool
		want    want
	}{
		"KubeadmStepsToControlPlaneMinor": {reason: "With kubeadm, a held pool a minor behind steps to the control plane's version (never past it).", target: "v1.35.0", current: "v1.33.4", cp: kcp("v1.34.1"), kubeadm: true, want: want{"v1.34.1", true, false}},
		"KubeadmHoldsSameMinor":           {reason: "With kubeadm, a held pool of the control plane's minor holds.", target: "v1.35.0", current: "v1.34.0", cp: kcp("v1.34.1"), kubeadm: true, want: want{"v1.34.0", true, false}},
		"KubeadmTargetBehind":             {reason: "With kubeadm, a target of an older minor than the control plane's could never create a machine.", target: "v1.33.4", current: "v1.33.4", cp: kcp("v1.34.1"), kubeadm: true, want: want{"v1.33.4", false, true}},
		"ControlPlaneThere":               {reason: "The control plane runs the target: the pool moves.", target: "v1.34.1", current: "v1.33.4", cp: kcp("v1.34.1"), want: want{"v1.34.1", false, false}},
		"ControlPlaneBehind":              {reason: "The control plane is behind: the pool holds its version.", target: "v1.34.1", current: "v1.33.4", cp: kcp("v1.33.4"), want: want{"v1.33.4", true, false}},
		"PatchBehind":                     {reason: "A newer patch waits for the control plane's patch too.", target: "v1.33.5", current: "v1.33.4", cp: kcp("v1.33.4"), want: want{"v1.33.4", true, false}},
		"NewPoolCPBehind":                 {reason: "A new pool starts at the control plane's version.", target: "v1.34.1", cp: kcp("v1.33.4"), want: want{"v1.33.4", true, false}},
		"UnknownControlPlane":             {reason: "Without a control-plane version, nothing holds.", target: "v1.34.1", current: "v1.33.4", cp: kcp(""), want: want{"v1.34.1", false, false}},
		"NoControlPlane":                  {reason: "Without a control plane known, nothing holds.", target: "v1.34.1", current: "v1.33.4", want: want{"v1.34.1", false, false}},
		"EKSMinorOnly":                    {reason: "EKS reports a minor: patches do not compare.", target: "v1.34.2", current: "v1.34.1", cp: kcp("1.34"), want: want{"v1.34.2", false, false}},
		"EKSMinorBehind":                  {reason: "EKS behind by a minor holds the pool.", target: "v1.34.2", current: "v1.33.4", cp: kcp("1.33"), want: want{"v1.33.4", true, false}},
		"CurrentAheadOfCP":                {reason: "A pool already ahead (never by this function) is brought to the control plane's version.", target: "v1.34.1", current: "v1.34.0", cp: kcp("v1.33.4"), want: want{"v1.33.4", true, false}},
		"DowngradeIsNotHeld":              {reason: "An older target is not held.", target: "v1.32.9", current: "v1.33.4", cp: kcp("v1.33.4"), want: want{"v1.32.9", false, false}},
		"ControlPlaneGarbage":             {reason: "An unparsable control-plane version holds nothing.", target: "v1.34.1", current: "v1.33.4", cp: kcp("latest"), want: want{"v1.34.1", false, false}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v, p, behind := sequence(tc.target, tc.current, tc.cp, tc.kubeadm)
			if diff := cmp.Diff(tc.want, want{v, p != nil, behind}, cmp.AllowUnexported(want{})); diff != "" {
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

func TestKubeadmSkewError(t *testing.T) {
	_, err := New().Plan(input(func(in *Input) {
		in.Spec.Version = "v1.33.4"
		in.ControlPlane = &ControlPlane{Kind: "KubeadmControlPlane", Name: "prod-eu-1", Version: "v1.34.1"}
	}))
	want := `spec.version: Invalid value: "v1.33.4": the control plane runs v1.34.1 and kubeadm joins only nodes of its minor: use a v1.34 version`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Plan(...): want an error containing %q, got %v", want, err)
	}
}
