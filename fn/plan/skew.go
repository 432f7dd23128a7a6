package plan

import (
	"github.com/fleetnodepool/function-fleetnodepool/apis/fleet/v1alpha1"
	"github.com/fleetnodepool/function-fleetnodepool/fn/kubeversion"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// computeSkew is how far the pool's machines are behind their control
// plane: the lowest version they are asked to run (observed, or planned
// for a new pool) against the control plane's. Nothing when either is not
// known or not a version: the conditions name those.
func computeSkew(p *Plan, in Input, kind provider.ControlPlaneKind) (string, *v1alpha1.VersionSkew) {
	if in.ControlPlane == nil || in.ControlPlane.Version == "" {
		return "", nil
	}
	cpv, err := kubeversion.Parse(in.ControlPlane.Version)
	if err != nil {
		return in.ControlPlane.Version, nil
	}
	cur, unread := currentVersion(in.Observed)
	if unread != nil {
		return in.ControlPlane.Version, nil
	}
	if cur.IsZero() {
		if cur, err = kubeversion.ParseNode(p.Status.Version); err != nil {
			return in.ControlPlane.Version, nil
		}
	}
	return in.ControlPlane.Version, &v1alpha1.VersionSkew{
		Minors:    int32(min(cur.MinorsBehind(cpv), 1000)), //nolint:gosec // Bounded above.
		Supported: int32(kind.MaxSkew),                     //nolint:gosec // A provider's small constant.
	}
}
