package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/capi"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider/aws"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider/azure"
)

func TestSequence(t *testing.T) {
	kubeadm, eks, aks := capi.KubeadmControlPlane, aws.New().ControlPlaneKinds()[0], azure.New().ControlPlaneKinds()[0]
	cp := func(k provider.ControlPlaneKind, v string) *ControlPlane {
		return &ControlPlane{Kind: k.Kind, Name: "c", Version: v}
	}
	running := func(v string) map[string]Observed {
		return map[string]Observed{"machinedeployment-a": {Name: "md-a", Version: v}, "infra-1234": {Name: "t"}}
	}
	type want struct {
		Version string
		Reason  string // Of the UpgradePending, "" for none.
		AsIs    bool
		Err     string // A substring of the field error, "" for none.
	}
	cases := map[string]struct {
		reason   string
		target   string
		observed map[string]Observed
		cp       *ControlPlane
		kind     provider.ControlPlaneKind
		want     want
	}{
		"KubeadmStepsToControlPlaneMinor": {reason: "With kubeadm, a held pool a minor behind steps to the control plane's version (never past it).",
			target: "v1.35.0", observed: running("v1.33.4"), cp: cp(kubeadm, "v1.34.1"), kind: kubeadm, want: want{Version: "v1.34.1", Reason: ReasonWaitingForControlPlane}},
		"KubeadmHoldsSameMinor": {reason: "With kubeadm, a held pool of the control plane's minor holds.",
			target: "v1.35.0", observed: running("v1.34.0"), cp: cp(kubeadm, "v1.34.1"), kind: kubeadm, want: want{Version: "v1.34.0", Reason: ReasonWaitingForControlPlane}},
		"KubeadmTargetBehind": {reason: "With kubeadm, a target of an older minor than the control plane's could never create a machine.",
			target: "v1.33.4", observed: running("v1.33.4"), cp: cp(kubeadm, "v1.34.1"), kind: kubeadm, want: want{Err: "kubeadm joins only nodes of the control plane's minor: use a version of v1.34"}},
		"ControlPlaneThere": {reason: "The control plane runs the target: the pool moves.",
			target: "v1.34.1", observed: running("v1.33.4"), cp: cp(kubeadm, "v1.34.1"), kind: kubeadm, want: want{Version: "v1.34.1"}},
		"ControlPlaneBehind": {reason: "The control plane is behind: the pool holds its version.",
			target: "v1.34.1", observed: running("v1.33.4"), cp: cp(kubeadm, "v1.33.4"), kind: kubeadm, want: want{Version: "v1.33.4", Reason: ReasonWaitingForControlPlane}},
		"PatchBehind": {reason: "A newer patch waits for the control plane's patch too.",
			target: "v1.33.5", observed: running("v1.33.4"), cp: cp(kubeadm, "v1.33.4"), kind: kubeadm, want: want{Version: "v1.33.4", Reason: ReasonWaitingForControlPlane}},
		"NewPoolCPBehind": {reason: "A new pool starts at the control plane's version.",
			target: "v1.34.1", cp: cp(kubeadm, "v1.33.4"), kind: kubeadm, want: want{Version: "v1.33.4", Reason: ReasonWaitingForControlPlane}},
		"BuildMetadataControlPlane": {reason: "A control plane on v1.33.4+vmware.1 is on v1.33: a pool targeting v1.34.1 holds (it was released before).",
			target: "v1.34.1", observed: running("v1.33.4"), cp: cp(kubeadm, "v1.33.4+vmware.1"), kind: kubeadm, want: want{Version: "v1.33.4", Reason: ReasonWaitingForControlPlane}},
		"BuildMetadataNewPool": {reason: "A new pool under a control plane with build metadata starts at the control plane's release, metadata kept.",
			target: "v1.34.1", cp: cp(kubeadm, "v1.33.4+vmware.1"), kind: kubeadm, want: want{Version: "v1.33.4+vmware.1", Reason: ReasonWaitingForControlPlane}},
		"PreReleaseControlPlane": {reason: "A control plane on v1.34.0-rc.1 does not run v1.34.0 yet: the pool holds.",
			target: "v1.34.0", observed: running("v1.33.4"), cp: cp(eks, "v1.34.0-rc.1"), kind: eks, want: want{Version: "v1.33.4", Reason: ReasonWaitingForControlPlane}},
		"PreReleaseKubeadmSteps": {reason: "With kubeadm, a pool a minor behind a v1.34.0-rc.1 control plane steps to it, never to v1.34.0.",
			target: "v1.34.0", observed: running("v1.33.4"), cp: cp(kubeadm, "v1.34.0-rc.1"), kind: kubeadm, want: want{Version: "v1.34.0-rc.1", Reason: ReasonWaitingForControlPlane}},
		"ControlPlaneGarbage": {reason: "An unparsable control-plane version holds the pool as it is, never releases it.",
			target: "v1.34.1", observed: running("v1.33.4"), cp: cp(kubeadm, "latest"), kind: kubeadm, want: want{Reason: ReasonVersionUnreadable, AsIs: true}},
		"ObservedGarbage": {reason: "An unparsable version on a running MachineDeployment holds the pool as it is.",
			target: "v1.34.1", observed: running("banana"), cp: cp(kubeadm, "v1.34.1"), kind: kubeadm, want: want{Reason: ReasonVersionUnreadable, AsIs: true}},
		"UnknownControlPlaneVersion": {reason: "A control plane that reports no version holds a running pool at its version.",
			target: "v1.34.1", observed: running("v1.33.4"), cp: cp(kubeadm, ""), kind: kubeadm, want: want{Version: "v1.33.4", Reason: ReasonControlPlaneVersionUnknown}},
		"NoControlPlane": {reason: "A control plane the function cannot read holds a running pool at its version.",
			target: "v1.34.1", observed: running("v1.33.4"), want: want{Version: "v1.33.4", Reason: ReasonControlPlaneVersionUnknown}},
		"NoControlPlaneAtTarget": {reason: "Without a control-plane version, a pool already at its target is not held.",
			target: "v1.34.1", observed: running("v1.34.1"), want: want{Version: "v1.34.1"}},
		"NoControlPlaneNewPool": {reason: "Without a control-plane version, a new pool starts at its target: nothing runs that could be disrupted.",
			target: "v1.34.1", want: want{Version: "v1.34.1"}},
		"EKSMinorOnly": {reason: "EKS reports a minor: patches do not compare.",
			target: "v1.34.2", observed: running("v1.34.1"), cp: cp(eks, "1.34"), kind: eks, want: want{Version: "v1.34.2"}},
		"EKSMinorBehind": {reason: "EKS behind by a minor holds the pool.",
			target: "v1.34.2", observed: running("v1.33.4"), cp: cp(eks, "1.33"), kind: eks, want: want{Version: "v1.33.4", Reason: ReasonWaitingForControlPlane}},
		"EKSMinorBehindNewPool": {reason: "EKS behind by a minor, reporting no patch: a new pool has no release to start at, and is not created.",
			target: "v1.34.2", cp: cp(eks, "1.33"), kind: eks, want: want{Reason: ReasonWaitingForControlPlane, AsIs: true}},
		"EKSFourMinorsBehind": {reason: "EKS supports nodes 3 minors behind: a pool pinned 4 behind is refused on its field.",
			target: "v1.30.0", observed: running("v1.30.0"), cp: cp(eks, "v1.34.1"), kind: eks, want: want{Err: "EKS supports nodes up to 3 minors older than the control plane: use a version of v1.31 to v1.34"}},
		"EKSThreeMinorsBehind": {reason: "EKS supports nodes 3 minors behind.",
			target: "v1.31.0", observed: running("v1.31.0"), cp: cp(eks, "v1.34.1"), kind: eks, want: want{Version: "v1.31.0"}},
		"AKSThreeMinorsBehind": {reason: "AKS supports node pools 2 minors behind: 3 is refused on the field.",
			target: "v1.31.0", observed: running("v1.31.0"), cp: cp(aks, "v1.34.1"), kind: aks, want: want{Err: "AKS supports node pools up to 2 minors older than the control plane: use a version of v1.32 to v1.34"}},
		"AKSFourMinorsBehind": {reason: "AKS: 4 minors behind is refused on the field.",
			target: "v1.30.0", observed: running("v1.30.0"), cp: cp(aks, "v1.34.1"), kind: aks, want: want{Err: "use a version of v1.32 to v1.34"}},
		"HeldOutOfSkewSteps": {reason: "A held EKS pool that fell out of skew steps to the control plane's version.",
			target: "v1.35.0", observed: running("v1.30.0"), cp: cp(eks, "v1.34.1"), kind: eks, want: want{Version: "v1.34.1", Reason: ReasonWaitingForControlPlane}},
		"CurrentAheadOfCP": {reason: "A pool already ahead (never by this function) is brought to the control plane's version.",
			target: "v1.34.1", observed: running("v1.34.0"), cp: cp(kubeadm, "v1.33.4"), kind: kubeadm, want: want{Version: "v1.33.4", Reason: ReasonWaitingForControlPlane}},
		"DowngradeIsNotHeld": {reason: "An older target of the control plane's minor is not held.",
			target: "v1.33.3", observed: running("v1.33.4"), cp: cp(kubeadm, "v1.33.4"), kind: kubeadm, want: want{Version: "v1.33.3"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := sequence(tc.target, tc.observed, nil, tc.cp, tc.kind, field.NewPath("spec", "version"))
			got := want{Version: s.version, AsIs: s.asIs}
			if s.pending != nil {
				got.Reason = s.pending.Reason
			}
			if err != nil {
				got = want{Err: tc.want.Err}
				if !strings.Contains(err.Error(), tc.want.Err) || tc.want.Err == "" {
					got.Err = err.Error()
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
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
	_, err := testPlanner().Plan(input(func(in *Input) {
		in.Spec.Version = "v1.33.4"
		in.ControlPlane = &ControlPlane{Kind: "KubeadmControlPlane", Name: "prod-eu-1", Version: "v1.34.1"}
	}))
	want := `spec.version: Invalid value: "v1.33.4": the control plane KubeadmControlPlane/prod-eu-1 runs v1.34.1, and kubeadm joins only nodes of the control plane's minor: use a version of v1.34`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Plan(...): want an error containing %q, got %v", want, err)
	}
}

// TestManagedSkew checks the platforms' skew on whole pools: a pool pinned
// four minors behind an EKS or AKS control plane is refused on its field,
// whatever its backend, and one within the skew composes at its version.
func TestManagedSkew(t *testing.T) {
	onEKS := func(in *Input) { in.Cluster = eks }
	onAKS := func(in *Input) { onAzure(in); in.Cluster = aks }
	pinned := func(pool, cp string) func(*Input) {
		return func(in *Input) {
			in.Spec.Version = pool
			in.ControlPlane = &ControlPlane{Kind: in.Cluster.ControlPlaneKind, Name: "prod-eu-1", Version: cp}
		}
	}
	cases := map[string]struct {
		reason  string
		edits   []func(*Input)
		wantErr string
	}{
		"EKSManagedFourBehind": {reason: "An EKS managed node group 4 minors behind its control plane is refused.",
			edits:   []func(*Input){onEKS, func(in *Input) { in.Spec.Backend = v1alpha1.BackendManaged }, pinned("v1.30.0", "v1.34.1")},
			wantErr: `spec.version: Invalid value: "v1.30.0": the control plane AWSManagedControlPlane/prod-eu-1 runs v1.34.1, and EKS supports nodes up to 3 minors older than the control plane: use a version of v1.31 to v1.34`},
		"EKSSelfManagedFourBehind": {reason: "Self-managed nodes on EKS keep EKS's skew too.",
			edits:   []func(*Input){onEKS, func(in *Input) { in.Spec.Backend = v1alpha1.BackendMachineDeployment }, pinned("v1.30.0", "v1.34")},
			wantErr: `spec.version: Invalid value: "v1.30.0": the control plane AWSManagedControlPlane/prod-eu-1 runs v1.34, and EKS supports nodes up to 3 minors older`},
		"EKSThreeBehind": {reason: "Three minors behind EKS is supported.",
			edits: []func(*Input){onEKS, func(in *Input) { in.Spec.Backend = v1alpha1.BackendManaged }, pinned("v1.31.0", "v1.34.1")}},
		"AKSFourBehind": {reason: "An AKS agent pool 4 minors behind its control plane is refused.",
			edits:   []func(*Input){onAKS, pinned("v1.30.0", "v1.34.1")},
			wantErr: `spec.version: Invalid value: "v1.30.0": the control plane AzureASOManagedControlPlane/prod-eu-1 runs v1.34.1, and AKS supports node pools up to 2 minors older than the control plane: use a version of v1.32 to v1.34`},
		"AKSTwoBehind": {reason: "Two minors behind AKS is supported.",
			edits: []func(*Input){onAKS, pinned("v1.32.0", "v1.34.1")}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := testPlanner().Plan(input(tc.edits...))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && !strings.Contains(got, tc.wantErr) {
				t.Fatalf("%s\nPlan(...): want an error containing %q, got %q", tc.reason, tc.wantErr, got)
			}
			if tc.wantErr == "" && p.Status.Version != p.Status.TargetVersion {
				t.Errorf("%s\nPlan(...): want the pool at its version %s, got %s", tc.reason, p.Status.TargetVersion, p.Status.Version)
			}
		})
	}
}

// TestUnreadableVersionHoldsAsIs checks that a version the function cannot
// read never releases a pool: every object is kept as it is, with the
// value named.
func TestUnreadableVersionHoldsAsIs(t *testing.T) {
	v1 := mustPlan(t, input())
	cases := map[string]struct {
		reason  string
		cp      string
		mdVer   string
		wantMsg string
	}{
		"ControlPlane": {reason: "A control plane reporting no Kubernetes version holds the pool as it is.",
			cp: "latest", mdVer: "v1.33.4", wantMsg: `cannot read the version "latest" of its control plane KubeadmControlPlane/prod-eu-1 (status.version)`},
		"MachineDeployment": {reason: "A MachineDeployment running no Kubernetes version holds the pool as it is.",
			cp: "v1.34.1", mdVer: "1.33", wantMsg: `cannot read the version "1.33" of prod-eu-1-workers-eu-west-1a (spec.template.spec.version)`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			obs := observe(t, v1, 2)
			for k, o := range obs {
				if isBacking(k) {
					o.Version = tc.mdVer
					obs[k] = o
				}
			}
			p := mustPlan(t, input(func(in *Input) {
				in.Policy.Channels["stable"] = "v1.34.1"
				in.Spec.Machine.Class = "large" // A change that would roll nodes.
				in.Observed = obs
				in.MachineSets = map[string][]MachineSet{}
				in.ControlPlane = &ControlPlane{Kind: "KubeadmControlPlane", Name: "prod-eu-1", Version: tc.cp}
			}))
			if p.UpgradePending == nil || p.UpgradePending.Reason != ReasonVersionUnreadable || !strings.Contains(p.UpgradePending.Message, tc.wantMsg) {
				t.Fatalf("%s\nPlan(...): want UpgradePending %s naming %q, got %+v", tc.reason, ReasonVersionUnreadable, tc.wantMsg, p.UpgradePending)
			}
			want := map[string]bool{}
			for k := range obs {
				want[k] = true
			}
			got := map[string]bool{}
			for _, r := range p.Resources {
				got[r.Key] = true
				if _, passed := r.Object.(*unstructured.Unstructured); !passed {
					t.Errorf("%s\n%s: want the observed object passed through as it is, got a planned %T", tc.reason, r.Key, r.Object)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s\nPlan(...) keys: -observed, +planned:\n%s", tc.reason, diff)
			}
		})
	}
}
