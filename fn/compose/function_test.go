package compose

import (
	"context"
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/response"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
	"github.com/fleetnodepool/function-fleetnodepool/test/exampleio"
)

const policyJSON = `{
	"apiVersion": "fleetnodepool.fn.crossplane.io/v1beta1",
	"kind": "Policy",
	"catalog": {"medium": {"aws": "m6i.xlarge", "azure": "Standard_D4s_v5"}},
	"channels": {"stable": "v1.33.4"},
	"defaults": {"channel": "stable"},
	"aws": {"iamInstanceProfile": "nodes.cluster-api-provider-aws.sigs.k8s.io"}
}`

const xrJSON = `{
	"apiVersion": "fleet.nodepool.dev/v1alpha1",
	"kind": "FleetNodePool",
	"metadata": {"name": "workers", "namespace": "team-a"},
	"spec": {
		"clusterName": "prod-eu-1",
		"provider": "aws",
		"machine": {"class": "medium"},
		"scaling": {"replicas": 3},
		"crossplane": {"compositionRef": {"name": "fleetnodepool"}}
	}
}`

// A legacy XR is cluster scoped, created for a claim.
const legacyXRJSON = `{
	"apiVersion": "fleet.nodepool.dev/v1alpha1",
	"kind": "XFleetNodePool",
	"metadata": {"name": "workers-x7k2p", "labels": {
		"crossplane.io/claim-name": "workers", "crossplane.io/claim-namespace": "team-a"}},
	"spec": {
		"clusterName": "prod-eu-1",
		"provider": "aws",
		"machine": {"class": "medium"},
		"scaling": {"replicas": 3},
		"compositionRef": {"name": "fleetnodepool"},
		"claimRef": {"name": "workers", "namespace": "team-a"}
	}
}`

// kubeadmCluster is a self-managed AWS Cluster, as a required resource.
const kubeadmCluster = `{"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
	"metadata": {"name": "prod-eu-1", "namespace": "team-a"},
	"spec": {"infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "AWSCluster", "name": "prod-eu-1"},
		"controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io", "kind": "KubeadmControlPlane", "name": "prod-eu-1"}}}`

// newRequest is a request with the given XR and input, and the kubeadm
// Cluster resolved as the pool's Cluster.
func newRequest(xr, input string) *fnv1.RunFunctionRequest {
	req := &fnv1.RunFunctionRequest{
		Meta:     &fnv1.RequestMeta{Tag: "hello"},
		Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: resource.MustStructJSON(xr)}},
		RequiredResources: map[string]*fnv1.Resources{
			"cluster": {Items: []*fnv1.Resource{{Resource: resource.MustStructJSON(kubeadmCluster)}}},
		},
	}
	maps.Copy(req.RequiredResources, exampleio.ServedCRDs())
	if input != "" {
		req.Input = resource.MustStructJSON(input)
	}
	return req
}

func fatal(msg string) *fnv1.RunFunctionResponse {
	return fatalWith(nil, msg)
}

// fatalWith is a Fatal response that still declares the pool's Cluster.
func fatalWith(r *fnv1.Requirements, msg string) *fnv1.RunFunctionResponse {
	return &fnv1.RunFunctionResponse{
		Requirements: r,
		Meta:         &fnv1.ResponseMeta{Tag: "hello", Ttl: durationpb.New(response.DefaultTTL)},
		Results: []*fnv1.Result{{
			Severity: fnv1.Severity_SEVERITY_FATAL,
			Message:  msg,
			Target:   fnv1.Target_TARGET_COMPOSITE.Enum(),
		}},
	}
}

func TestRunFunctionFatal(t *testing.T) {
	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		want   *fnv1.RunFunctionResponse
	}{
		"NoInput": {
			reason: "A Composition step without the policy input is a Fatal result naming what to add.",
			req:    newRequest(xrJSON, ""),
			want:   fatal(errNoInput),
		},
		"WrongInputKind": {
			reason: "An input of another kind is refused with the kind we expect.",
			req:    newRequest(xrJSON, `{"apiVersion": "pt.fn.crossplane.io/v1beta1", "kind": "Resources"}`),
			want:   fatal("cannot read the platform policy: the step's input is a pt.fn.crossplane.io/v1beta1 Resources, want apiVersion fleetnodepool.fn.crossplane.io/v1beta1, kind Policy"),
		},
		"UnknownInputField": {
			reason: "The policy is decoded strictly: a misspelt field is an error, not silently ignored.",
			req:    newRequest(xrJSON, `{"apiVersion": "fleetnodepool.fn.crossplane.io/v1beta1", "kind": "Policy", "chanels": {}}`),
			want:   fatal(`cannot decode the platform policy (the Composition step's input): input.chanels: unknown field: check its spelling against the schema`),
		},
		"WrongSpecType": {
			reason: "A spec field of the wrong type is an error naming the field.",
			req: newRequest(`{"apiVersion": "fleet.nodepool.dev/v1alpha1", "kind": "FleetNodePool",
				"metadata": {"name": "w", "namespace": "a"}, "spec": {"scaling": {"replicas": "three"}}}`, policyJSON),
			want: fatal(`cannot decode the FleetNodePool spec: spec.scaling.replicas: must be an integer, not a JSON string`),
		},
		"InvalidSpec": {
			reason: "An invalid spec is a Fatal result naming each field and its fix.",
			req: newRequest(`{"apiVersion": "fleet.nodepool.dev/v1alpha1", "kind": "FleetNodePool",
				"metadata": {"name": "w", "namespace": "a"},
				"spec": {"clusterName": "c", "provider": "aws", "machine": {"class": "huge"}, "scaling": {"min": 3, "max": 2}}}`, policyJSON),
			want: fatalWith(withControlPlane(requirements("a", "c", "w"), "a", "prod-eu-1"), `invalid FleetNodePool: spec.machine.class: Unsupported value: "huge": supported values: "medium"; `+
				`spec.scaling.min: Invalid value: 3: must be less than or equal to spec.scaling.max (2): lower min or raise max`),
		},
		"ClusterScopedWithoutClaim": {
			reason: "A cluster-scoped XR created without a claim has no namespace to compose into.",
			req:    newRequest(`{"apiVersion": "fleet.nodepool.dev/v1alpha1", "kind": "XFleetNodePool", "metadata": {"name": "w"}, "spec": {}}`, policyJSON),
			want:   fatal(errNoNamespace),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp, err := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...)))).RunFunction(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("%s\nRunFunction(...): unexpected error %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, rsp, protocmp.Transform()); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want rsp, +got rsp:\n%s", tc.reason, diff)
			}
		})
	}
}

// composed summarizes a response's desired resources: name, namespace and
// readiness by key.
type composed struct {
	Kind, Name, Namespace string
	Ready                 fnv1.Ready
}

func summarize(rsp *fnv1.RunFunctionResponse) map[string]composed {
	out := map[string]composed{}
	for k, r := range rsp.GetDesired().GetResources() {
		md := r.GetResource().GetFields()["metadata"].GetStructValue().GetFields()
		out[k] = composed{
			Kind:      r.GetResource().GetFields()["kind"].GetStringValue(),
			Name:      md["name"].GetStringValue(),
			Namespace: md["namespace"].GetStringValue(),
			Ready:     r.GetReady(),
		}
	}
	return out
}

func TestRunFunctionComposes(t *testing.T) {
	previous := &fnv1.Resource{Resource: resource.MustStructJSON(`{"apiVersion": "v1", "kind": "ConfigMap"}`)}
	withPrevious := newRequest(xrJSON, policyJSON)
	withPrevious.Desired = &fnv1.State{Resources: map[string]*fnv1.Resource{"from-an-earlier-step": previous}}

	templates := func(ns string) map[string]composed {
		return map[string]composed{
			"infra-68bb05d3":     {Kind: "AWSMachineTemplate", Name: "prod-eu-1-workers-68bb05d3", Namespace: ns, Ready: fnv1.Ready_READY_FALSE},
			"bootstrap-a41fab68": {Kind: "KubeadmConfigTemplate", Name: "prod-eu-1-workers-a41fab68", Namespace: ns, Ready: fnv1.Ready_READY_FALSE},
			"machinedeployment":  {Kind: "MachineDeployment", Name: "prod-eu-1-workers", Namespace: ns, Ready: fnv1.Ready_READY_FALSE},
			"machinehealthcheck": {Kind: "MachineHealthCheck", Name: "prod-eu-1-workers", Namespace: ns, Ready: fnv1.Ready_READY_FALSE},
		}
	}
	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		want   map[string]composed
	}{
		"Namespaced": {
			reason: "A namespaced FleetNodePool composes its MachineDeployment and hashed templates in its namespace.",
			req:    newRequest(xrJSON, policyJSON),
			want:   templates("team-a"),
		},
		"LegacyClaim": {
			reason: "A legacy cluster-scoped XR composes into its claim's namespace, named after the claim: the same objects as the namespaced form.",
			req:    newRequest(legacyXRJSON, policyJSON),
			want:   templates("team-a"),
		},
		"PassesThroughEarlierSteps": {
			reason: "Desired resources of earlier pipeline steps are kept.",
			req:    withPrevious,
			want: func() map[string]composed {
				m := templates("team-a")
				m["from-an-earlier-step"] = composed{Kind: "ConfigMap"}
				return m
			}(),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp, err := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...)))).RunFunction(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("%s\nRunFunction(...): unexpected error %v", tc.reason, err)
			}
			if len(rsp.GetResults()) > 0 {
				t.Fatalf("%s\nRunFunction(...): unexpected results %v", tc.reason, rsp.GetResults())
			}
			if diff := cmp.Diff(tc.want, summarize(rsp)); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want desired, +got desired:\n%s", tc.reason, diff)
			}
			wantStatus := resource.MustStructJSON(`{"provider": "aws", "backend": "MachineDeployment", "version": "v1.33.4", "targetVersion": "v1.33.4",
				"machineType": "m6i.xlarge", "revisions": ["prod-eu-1-workers-68bb05d3", "prod-eu-1-workers-a41fab68"],
				"changes": [{"object": "MachineDeployment/prod-eu-1-workers", "action": "Create"}], "rollout": {"state": "UpToDate"}}`)
			if diff := cmp.Diff(wantStatus, rsp.GetDesired().GetComposite().GetResource().GetFields()["status"].GetStructValue(), protocmp.Transform()); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want status, +got status:\n%s", tc.reason, diff)
			}
			wantCond := []*fnv1.Condition{{
				Type: TypePoolAvailable, Status: fnv1.Status_STATUS_CONDITION_FALSE, Reason: "Unavailable",
				Message: ptrTo("not available yet: prod-eu-1-workers"),
				Target:  fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
			}, {
				Type: TypeChangeRefused, Status: fnv1.Status_STATUS_CONDITION_FALSE, Reason: "ChangeApplied",
				Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
			}, {
				Type: TypeUpgradePending, Status: fnv1.Status_STATUS_CONDITION_FALSE, Reason: "AtTarget",
				Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
			}, {
				Type: TypeRolloutHeld, Status: fnv1.Status_STATUS_CONDITION_FALSE, Reason: "NotHeld",
				Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
			}, {
				Type: TypeRolloutInProgress, Status: fnv1.Status_STATUS_CONDITION_FALSE, Reason: "RolledOut",
				Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
			}, {
				Type: TypeScaleFromZero, Status: fnv1.Status_STATUS_CONDITION_TRUE, Reason: plan.ReasonNotScaledToZero,
				Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
			}}
			if diff := cmp.Diff(wantCond, rsp.GetConditions(), protocmp.Transform()); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want conditions, +got conditions:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestRunFunctionDeterministic checks that the same request gives the same
// bytes.
func TestRunFunctionDeterministic(t *testing.T) {
	f := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))))
	var prev []byte
	for i := range 20 {
		rsp, err := f.RunFunction(context.Background(), newRequest(xrJSON, policyJSON))
		if err != nil {
			t.Fatal(err)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rsp)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && string(b) != string(prev) {
			t.Fatalf("RunFunction(...) call %d returned different bytes for the same request", i)
		}
		prev = b
	}
}

func ptrTo[T any](v T) *T { return &v }

// withControlPlane adds the kubeadm control plane requirement.
func withControlPlane(r *fnv1.Requirements, ns, name string) *fnv1.Requirements {
	r.Resources["controlplane"] = &fnv1.ResourceSelector{
		ApiVersion: "controlplane.cluster.x-k8s.io/v1beta2", Kind: "KubeadmControlPlane",
		Match: &fnv1.ResourceSelector_MatchName{MatchName: name}, Namespace: &ns,
	}
	return r
}
