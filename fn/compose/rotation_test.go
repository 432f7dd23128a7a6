package compose

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
)

// TestRotationThroughRunFunction checks that the adapter gives planning
// what rotation reads (MachineSets' creationTimestamps, observed
// spec.rollout.after), and that a cached plan is not served past the
// instant a rotation falls due: the AWS example has a max node age of 720h.
func TestRotationThroughRunFunction(t *testing.T) {
	now := sunday2300
	f := New(WithPlanner(plan.New(plan.WithProviders(providers.All()...))), WithClock(func() time.Time { return now }))
	created := sunday2300.Add(-600 * time.Hour) // Due between 648h and 720h after.
	req := runningPool(t, f)
	for _, ms := range req.GetRequiredResources()[requirementMachineSets].GetItems() {
		ms.GetResource().GetFields()["metadata"].GetStructValue().GetFields()["creationTimestamp"] = structpb.NewStringValue(created.Format(time.RFC3339))
	}
	afters := func(rsp *fnv1.RunFunctionResponse) map[string]string {
		out := map[string]string{}
		for k, r := range rsp.GetDesired().GetResources() {
			if strings.HasPrefix(k, "machinedeployment-") {
				out[k] = r.GetResource().GetFields()["spec"].GetStructValue().GetFields()["rollout"].GetStructValue().GetFields()["after"].GetStringValue()
			}
		}
		return out
	}
	next := func(rsp *fnv1.RunFunctionResponse) string {
		return field(rsp.GetDesired().GetComposite().GetResource().GetFields(), "status", "rotation", "nextRotation").GetStringValue()
	}

	first := answer(t, f, req)
	due := next(first)
	dueAt, err := time.Parse(time.RFC3339, due)
	if err != nil {
		t.Fatalf("status.rotation.nextRotation %q: %v", due, err)
	}
	if dueAt.Before(created.Add(648*time.Hour)) || !dueAt.Before(created.Add(720*time.Hour)) {
		t.Errorf("status.rotation.nextRotation %s, want in the last tenth (72h) before the max age 720h after %s", due, created)
	}
	for k, a := range afters(first) {
		if a != "" {
			t.Errorf("%s: before its due time, spec.rollout.after %q, want none", k, a)
		}
	}

	// The same request once due is not served from the cache: the
	// rotation is a change to start, which asks for the Cluster's other
	// pools (it has none).
	now = dueAt.Add(time.Minute)
	if _, ok := answer(t, f, req).GetRequirements().GetResources()[requirementMachineDeployments]; !ok {
		t.Fatal("once due, the pool does not ask for the Cluster's MachineDeployments: the rotation is not gated")
	}
	req.RequiredResources[requirementMachineDeployments] = &fnv1.Resources{}
	req.RequiredResources[requirementMachinePools] = &fnv1.Resources{}
	second := answer(t, f, req)
	got := afters(second)
	if len(got) != 2 {
		t.Fatalf("MachineDeployments %v, want the example's two", got)
	}
	for k, a := range got {
		if a != due {
			t.Errorf("%s: once due, spec.rollout.after %q, want the due time %s", k, a, due)
		}
	}
}
