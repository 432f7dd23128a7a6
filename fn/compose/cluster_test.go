package compose

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/response"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
)

func TestRunFunctionCluster(t *testing.T) {
	unresolved := newRequest(xrJSON, policyJSON)
	unresolved.RequiredResources = nil

	missing := newRequest(xrJSON, policyJSON)
	missing.RequiredResources = map[string]*fnv1.Resources{"cluster": {}}

	noCapability := newRequest(xrJSON, policyJSON)
	noCapability.RequiredResources = nil
	noCapability.Meta.Capabilities = []fnv1.Capability{fnv1.Capability_CAPABILITY_CAPABILITIES}

	meta := &fnv1.ResponseMeta{Tag: "hello", Ttl: durationpb.New(response.DefaultTTL)}
	msg := "cannot find Cluster team-a/prod-eu-1 (spec.clusterName): create the Cluster, or fix spec.clusterName; " +
		"until it exists nothing is composed, changed or deleted"
	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		want   *fnv1.RunFunctionResponse
	}{
		"NotResolvedYet": {
			reason: "Before Crossplane fetched the Cluster, the function asks for it and composes nothing (Crossplane calls again).",
			req:    unresolved,
			want:   &fnv1.RunFunctionResponse{Meta: meta, Requirements: requirements("team-a", "prod-eu-1", "workers")},
		},
		"NotFound": {
			reason: "A missing Cluster is a Fatal result, so Crossplane neither applies nor deletes anything, and a condition says why.",
			req:    missing,
			want: &fnv1.RunFunctionResponse{
				Meta:         meta,
				Requirements: requirements("team-a", "prod-eu-1", "workers"),
				Results: []*fnv1.Result{{
					Severity: fnv1.Severity_SEVERITY_FATAL, Message: msg, Target: fnv1.Target_TARGET_COMPOSITE.Enum(),
				}},
				Conditions: []*fnv1.Condition{{
					Type: TypePoolAvailable, Status: fnv1.Status_STATUS_CONDITION_FALSE, Reason: ReasonClusterNotFound,
					Message: ptrTo(msg), Target: fnv1.Target_TARGET_COMPOSITE_AND_CLAIM.Enum(),
				}},
			},
		},
		"NoRequiredResourcesCapability": {
			reason: "A Crossplane that cannot resolve required resources gets a Fatal result saying what is needed.",
			req:    noCapability,
			want: &fnv1.RunFunctionResponse{
				Meta:         meta,
				Requirements: requirements("team-a", "prod-eu-1", "workers"),
				Results: []*fnv1.Result{{
					Severity: fnv1.Severity_SEVERITY_FATAL, Message: errNoRequiredResources, Target: fnv1.Target_TARGET_COMPOSITE.Enum(),
				}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp, err := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...)))).RunFunction(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, rsp, protocmp.Transform()); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want rsp, +got rsp:\n%s", tc.reason, diff)
			}
		})
	}
}
