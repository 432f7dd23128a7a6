package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

func TestComputeSkew(t *testing.T) {
	eks := provider.ControlPlaneKind{Kind: "AWSManagedControlPlane", MaxSkew: 3}
	running := func(vs ...string) map[string]Observed {
		o := map[string]Observed{"infra-1234": {Name: "t"}}
		for i, v := range vs {
			o["machinedeployment-"+string(rune('a'+i))] = Observed{Name: "md", Version: v}
		}
		return o
	}
	type want struct {
		CP   string
		Skew *v1alpha1.VersionSkew
	}
	cases := map[string]struct {
		reason   string
		cp       *ControlPlane
		observed map[string]Observed
		planned  string
		want     want
	}{
		"SameMinor": {reason: "Machines of the control plane's minor are 0 behind.",
			cp: &ControlPlane{Version: "v1.34.1"}, observed: running("v1.34.0"),
			want: want{CP: "v1.34.1", Skew: &v1alpha1.VersionSkew{Minors: 0, Supported: 3}}},
		"OldestZoneCounts": {reason: "The zone furthest behind is the pool's skew.",
			cp: &ControlPlane{Version: "v1.35.0"}, observed: running("v1.34.1", "v1.32.5"),
			want: want{CP: "v1.35.0", Skew: &v1alpha1.VersionSkew{Minors: 3, Supported: 3}}},
		"BeyondSupport": {reason: "A pool four minors behind shows it: the alert compares the two.",
			cp: &ControlPlane{Version: "v1.36.0"}, observed: running("v1.32.5"),
			want: want{CP: "v1.36.0", Skew: &v1alpha1.VersionSkew{Minors: 4, Supported: 3}}},
		"NewPool": {reason: "A pool with no machines yet is measured by the version it is planned at.",
			cp: &ControlPlane{Version: "v1.34.1"}, planned: "v1.33.4",
			want: want{CP: "v1.34.1", Skew: &v1alpha1.VersionSkew{Minors: 1, Supported: 3}}},
		"NoControlPlane": {reason: "Without a control plane version there is nothing to measure.",
			observed: running("v1.34.0")},
		"ControlPlaneVersionUnreadable": {reason: "An unreadable control plane version is shown as read, with no skew (UpgradePending names it).",
			cp: &ControlPlane{Version: "latest"}, observed: running("v1.34.0"), want: want{CP: "latest"}},
		"MachineVersionUnreadable": {reason: "An unreadable machine version gives no skew.",
			cp: &ControlPlane{Version: "v1.34.1"}, observed: running("1.34"), want: want{CP: "v1.34.1"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := &Plan{Status: v1alpha1.FleetNodePoolStatus{Version: tc.planned}}
			in := Input{ControlPlane: tc.cp, Observed: tc.observed}
			var got want
			got.CP, got.Skew = computeSkew(p, in, eks)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\ncomputeSkew(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
