package plan

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// TestPreviewFields holds the typed read preview uses to what a JSON round
// trip of the whole object gives at every path preview compares.
func TestPreviewFields(t *testing.T) {
	paths := [][]string{
		{"metadata", "annotations"},
		{"spec", "replicas"},
		{"spec", "rollout"},
		{"spec", "template", "metadata", "labels"},
		{"spec", "template", "spec", "version"},
		{"spec", "template", "spec", "infrastructureRef", "name"},
		{"spec", "template", "spec", "bootstrap", "configRef", "name"},
	}
	full := func() *clusterv1.MachineDeployment {
		md := &clusterv1.MachineDeployment{}
		md.SetGroupVersionKind(clusterv1.GroupVersion.WithKind("MachineDeployment"))
		md.Name = "a"
		md.Annotations = map[string]string{"cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size": "1"}
		md.Spec.Replicas = ptr.To[int32](3)
		md.Spec.Rollout.Strategy.Type = clusterv1.RollingUpdateMachineDeploymentStrategyType
		md.Spec.Rollout.Strategy.RollingUpdate.MaxSurge = ptr.To(intstr.FromString("25%"))
		md.Spec.Rollout.Strategy.RollingUpdate.MaxUnavailable = ptr.To(intstr.FromInt32(0))
		md.Spec.Template.Labels = map[string]string{"pool": "a"}
		md.Spec.Template.Spec.Version = "v1.34.2"
		md.Spec.Template.Spec.InfrastructureRef.Name = "infra-1"
		md.Spec.Template.Spec.Bootstrap.ConfigRef.Name = "boot-1"
		return md
	}
	mp := &clusterv1.MachinePool{}
	mp.SetGroupVersionKind(clusterv1.GroupVersion.WithKind("MachinePool"))
	mp.Spec.Template.Spec.Version = "v1.34.2"
	mp.Spec.Template.Spec.InfrastructureRef.Name = "pool"
	mp.Spec.Template.Spec.Bootstrap.ConfigRef.Name = "boot-2"

	cases := map[string]struct {
		reason string
		obj    provider.Object
	}{
		"FullMachineDeployment": {
			reason: "Every compared field set: annotations, replicas, rollout bounds, labels, version and references.",
			obj:    full(),
		},
		"AutoscaledMachineDeployment": {
			reason: "No replicas, no rollout, no labels, no annotations: each is absent, as in JSON.",
			obj: func() provider.Object {
				md := full()
				md.Spec.Replicas, md.Spec.Rollout, md.Spec.Template.Labels, md.Annotations = nil, clusterv1.MachineDeploymentRolloutSpec{}, nil, nil
				return md
			}(),
		},
		"StrategyTypeOnly": {
			reason: "A strategy type without rolling-update bounds: rollingUpdate is absent, as in JSON.",
			obj: func() provider.Object {
				md := full()
				md.Spec.Rollout.Strategy.RollingUpdate = clusterv1.MachineDeploymentRolloutStrategyRollingUpdate{}
				return md
			}(),
		},
		"IntegerBoundsAndMore": {
			reason: "Integer bounds, and a rollout field the backend does not set, which takes the JSON round trip.",
			obj: func() provider.Object {
				md := full()
				md.Spec.Rollout.Strategy.RollingUpdate.MaxSurge = ptr.To(intstr.FromInt32(2))
				md.Spec.Rollout.After = metav1.NewTime(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
				return md
			}(),
		},
		"MachinePool": {
			reason: "A MachinePool has no rollout; its template is read the same way.",
			obj:    mp,
		},
	}
	// Every pool object of the default plan, on AWS and on Azure.
	for _, mod := range []func(*Input){func(*Input) {}, onAzure} {
		p, err := testPlanner().Plan(input(mod))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Resources {
			if IsPool(r.Object) {
				cases["Planned"+r.Object.GetObjectKind().GroupVersionKind().Kind+"/"+r.Object.GetName()] = struct {
					reason string
					obj    provider.Object
				}{reason: "An object the planner makes.", obj: r.Object}
			}
		}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := provider.JSONMap(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			got, err := previewFields(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				w, _, _ := unstructured.NestedFieldNoCopy(want, p...)
				g, _, _ := unstructured.NestedFieldNoCopy(got, p...)
				if diff := cmp.Diff(w, g); diff != "" {
					t.Errorf("%s\npreviewFields(...) at %v: -want, +got:\n%s", tc.reason, p, diff)
				}
			}
		})
	}
}
