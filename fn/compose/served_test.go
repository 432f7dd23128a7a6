package compose

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
)

// The CRDs of the AWS example's kinds.
const (
	crdMachineDeployments  = "machinedeployments.cluster.x-k8s.io"
	crdMachineHealthChecks = "machinehealthchecks.cluster.x-k8s.io"
	crdKubeadmTemplates    = "kubeadmconfigtemplates.bootstrap.cluster.x-k8s.io"
	crdAWSTemplates        = "awsmachinetemplates.infrastructure.cluster.x-k8s.io"
	crdAWSMachinePools     = "awsmachinepools.infrastructure.cluster.x-k8s.io"
)

// TestServedKinds: before anything is applied, the function checks that
// the management cluster serves every kind it composes, at the version it
// composes it. A kind observed at that version is; of others it reads the
// CRD, and a kind not served (or served by a provider of a contract Cluster
// API does not accept) is a Fatal result naming the kind, the version and
// what to install: Crossplane then applies and deletes nothing.
func TestServedKinds(t *testing.T) {
	f := newFunction()
	newPool := func(*testing.T) *fnv1.RunFunctionRequest { return newRequest(xrJSON, policyJSON) }
	// withCRD edits the CRD Crossplane sends under name.
	withCRD := func(req *fnv1.RunFunctionRequest, name string, edit func(crd map[string]any)) *fnv1.RunFunctionRequest {
		rs := req.RequiredResources[requirementCRDPrefix+name]
		crd := rs.GetItems()[0].GetResource().AsMap()
		edit(crd)
		rs.Items[0].Resource = mustStruct(crd)
		return req
	}
	type want struct {
		// CRDs the answer asks for (a Fatal one too: Crossplane then
		// watches them, and installing the provider wakes the pool), Fatal
		// its Fatal result's message ("" for none) and Composed whether it
		// has desired resources.
		CRDs     []string
		Fatal    string
		Composed bool
	}
	cases := map[string]struct {
		reason string
		req    func(*testing.T) *fnv1.RunFunctionRequest
		want   want
	}{
		"NotReadYet": {
			reason: "A new pool whose CRDs Crossplane has not sent yet: the answer asks for them, and composes nothing until it has them.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				req := newPool(t)
				for k := range req.RequiredResources {
					if strings.HasPrefix(k, requirementCRDPrefix) {
						delete(req.RequiredResources, k)
					}
				}
				return req
			},
			want: want{CRDs: []string{crdAWSTemplates, crdKubeadmTemplates, crdMachineDeployments, crdMachineHealthChecks}},
		},
		"Served": {
			reason: "Every kind served at its version: the pool is composed, and the answer asks for the same CRDs again (Crossplane's loop settles).",
			req:    newPool,
			want:   want{CRDs: []string{crdAWSTemplates, crdKubeadmTemplates, crdMachineDeployments, crdMachineHealthChecks}, Composed: true},
		},
		"ObservedIsServed": {
			reason: "A running pool observed at the versions it composes reads no CRD.",
			req:    func(t *testing.T) *fnv1.RunFunctionRequest { return runningPool(t, f) },
			want:   want{Composed: true},
		},
		"ObservedAtAnotherVersion": {
			reason: "A kind observed at another version than the one composed (a provider's API version move): its CRD is read, and serves it.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				req := runningPool(t, f)
				for k, r := range req.GetObserved().GetResources() {
					if strings.HasPrefix(k, "machinedeployment-") {
						r.GetResource().GetFields()["apiVersion"] = structpb.NewStringValue("cluster.x-k8s.io/v1beta1")
					}
				}
				return req
			},
			want: want{CRDs: []string{crdMachineDeployments}, Composed: true},
		},
		"NoCRD": {
			reason: "CAPA is not installed: a Fatal result naming the kind, its version and what serves it.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				req := newPool(t)
				req.RequiredResources[requirementCRDPrefix+crdAWSTemplates] = &fnv1.Resources{}
				return req
			},
			want: want{CRDs: []string{crdAWSTemplates, crdKubeadmTemplates, crdMachineDeployments, crdMachineHealthChecks}, Fatal: "AWSMachineTemplate infrastructure.cluster.x-k8s.io/v1beta2 is not served by the management cluster " +
				"(no CustomResourceDefinition awsmachinetemplates.infrastructure.cluster.x-k8s.io): install or upgrade Cluster API Provider AWS (CAPA); until it is, nothing of the pool is applied or deleted"},
		},
		"OlderVersionOnly": {
			reason: "A CAPA too old to serve v1beta2: the Fatal result says what it serves.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				return withCRD(newPool(t), crdAWSTemplates, func(crd map[string]any) {
					crd["spec"].(map[string]any)["versions"] = []any{map[string]any{"name": "v1beta1", "served": true, "storage": true}}
				})
			},
			want: want{CRDs: []string{crdAWSTemplates, crdKubeadmTemplates, crdMachineDeployments, crdMachineHealthChecks}, Fatal: "AWSMachineTemplate infrastructure.cluster.x-k8s.io/v1beta2 is not served by the management cluster " +
				"(its CustomResourceDefinition awsmachinetemplates.infrastructure.cluster.x-k8s.io serves v1beta1 only): " +
				"install or upgrade Cluster API Provider AWS (CAPA); until it is, nothing of the pool is applied or deleted"},
		},
		"VersionNotServed": {
			reason: "A version the CRD lists but does not serve is not served.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				return withCRD(newPool(t), crdMachineDeployments, func(crd map[string]any) {
					crd["spec"].(map[string]any)["versions"] = []any{
						map[string]any{"name": "v1beta1", "served": true, "storage": true},
						map[string]any{"name": "v1beta2", "served": false, "storage": false},
					}
				})
			},
			want: want{CRDs: []string{crdAWSTemplates, crdKubeadmTemplates, crdMachineDeployments, crdMachineHealthChecks}, Fatal: "MachineDeployment cluster.x-k8s.io/v1beta2 is not served by the management cluster " +
				"(its CustomResourceDefinition machinedeployments.cluster.x-k8s.io serves v1beta1 only): " +
				"install or upgrade Cluster API (core); until it is, nothing of the pool is applied or deleted"},
		},
		"ContractNotAccepted": {
			reason: "A provider whose CRD implements only a contract Cluster API v1.14 does not accept is refused.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				return withCRD(newPool(t), crdAWSTemplates, func(crd map[string]any) {
					crd["metadata"].(map[string]any)["labels"] = map[string]any{"cluster.x-k8s.io/v1alpha4": "v1alpha4"}
				})
			},
			want: want{CRDs: []string{crdAWSTemplates, crdKubeadmTemplates, crdMachineDeployments, crdMachineHealthChecks}, Fatal: "AWSMachineTemplate infrastructure.cluster.x-k8s.io/v1beta2 is not served by the management cluster " +
				"(its CustomResourceDefinition awsmachinetemplates.infrastructure.cluster.x-k8s.io implements no Cluster API contract " +
				"this Cluster API accepts at v1beta2: none of its labels cluster.x-k8s.io/v1beta2, cluster.x-k8s.io/v1beta1 lists v1beta2): " +
				"install or upgrade Cluster API Provider AWS (CAPA); until it is, nothing of the pool is applied or deleted"},
		},
		"NewKindOfRunningPool": {
			reason: "A running pool moved to an Auto Scaling group (replacement allowed) on a management cluster without " +
				"AWSMachinePools: refused before anything of it is applied or deleted.",
			req: func(t *testing.T) *fnv1.RunFunctionRequest {
				req := runningPool(t, f)
				req.RequiredResources[requirementCRDPrefix+crdAWSMachinePools] = &fnv1.Resources{}
				spec := req.Observed.Composite.Resource.Fields["spec"].GetStructValue()
				spec.Fields["backend"] = structpb.NewStringValue("MachinePool")
				md := req.Observed.Composite.Resource.Fields["metadata"].GetStructValue()
				md.Fields["annotations"] = mustValue(map[string]any{plan.AnnotationAllowReplacement: "true"})
				return req
			},
			want: want{CRDs: []string{crdAWSMachinePools, "kubeadmconfigs.bootstrap.cluster.x-k8s.io", "machinepools.cluster.x-k8s.io"}, Fatal: "AWSMachinePool infrastructure.cluster.x-k8s.io/v1beta2 is not served by the management cluster " +
				"(no CustomResourceDefinition awsmachinepools.infrastructure.cluster.x-k8s.io): install or upgrade Cluster API Provider AWS (CAPA) with its MachinePool feature gate; until it is, nothing of the pool is applied or deleted"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp := answer(t, f, tc.req(t))
			got := want{Composed: len(rsp.GetDesired().GetResources()) > 0}
			for k := range rsp.GetRequirements().GetResources() {
				if n, ok := strings.CutPrefix(k, requirementCRDPrefix); ok {
					got.CRDs = append(got.CRDs, n)
				}
			}
			slices.Sort(got.CRDs)
			for _, r := range rsp.GetResults() {
				if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
					got.Fatal = r.GetMessage()
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
