package compose

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossplane/function-sdk-go/resource"
	awsv1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
)

func TestToStruct(t *testing.T) {
	spot := &awsv1.AWSMachineTemplate{
		TypeMeta:   metav1.TypeMeta{APIVersion: "infrastructure.cluster.x-k8s.io/v1beta2", Kind: "AWSMachineTemplate"},
		ObjectMeta: metav1.ObjectMeta{Name: "t", Namespace: "ns"},
	}
	spot.Spec.Template.Spec.InstanceType = "m6i.large"
	spot.Spec.Template.Spec.SpotMarketOptions = &awsv1.SpotMarketOptions{}
	spot.Spec.Template.Spec.RootVolume = &awsv1.Volume{Size: 100}

	cases := map[string]struct {
		reason string
		obj    any
		want   string
	}{
		"ProviderTypeEncodedLikeUpstreamClients": {
			reason: "Zero numbers are omitted (placementGroupPartition: 0 would be rejected, the CRD's minimum is 1), " +
				"an empty spot options object is kept (it means: run on spot), status and creationTimestamp are dropped.",
			obj: spot,
			want: `{"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "AWSMachineTemplate",
				"metadata": {"name": "t", "namespace": "ns"},
				"spec": {"template": {"metadata": {}, "spec": {
					"ami": {}, "cloudInit": {}, "instanceType": "m6i.large",
					"rootVolume": {"size": 100}, "spotMarketOptions": {}}}}}`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ToStruct(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(resource.MustStructJSON(tc.want), got, protocmp.Transform()); diff != "" {
				t.Errorf("%s\nToStruct(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestFromStructRoundTrip(t *testing.T) {
	in := resource.MustStructJSON(`{"a": {"b": [1, 2.5, "x", true, null]}, "n": 9007199254740993}`)
	var got map[string]any
	if err := FromStruct(in, &got, "test", "", false); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": map[string]any{"b": []any{1.0, 2.5, "x", true, nil}}, "n": 9007199254740992.0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromStruct(...): -want, +got:\n%s", diff)
	}
}
