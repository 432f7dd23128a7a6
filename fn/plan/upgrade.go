package plan

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fleetnodepool/function-fleetnodepool/fn/kubeversion"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
)

// A ControlPlane is what planning reads of the Cluster's control plane.
type ControlPlane struct {
	// Kind and Name of the control plane object.
	Kind, Name string
	// Version the control plane runs (status.version), "" when unknown.
	Version string
}

// Reasons a pool is held below its target version.
const (
	// ReasonWaitingForControlPlane: the control plane does not run the
	// target yet.
	ReasonWaitingForControlPlane = "WaitingForControlPlane"
	// ReasonControlPlaneVersionUnknown: the control plane reports no
	// version (yet), or is of a kind the function cannot read.
	ReasonControlPlaneVersionUnknown = "ControlPlaneVersionUnknown"
	// ReasonVersionUnreadable: a version is not a Kubernetes version. The
	// pool is held as it is, every object unchanged.
	ReasonVersionUnreadable = "VersionUnreadable"
)

// An UpgradePending says the pool is held below its target version, and
// why.
type UpgradePending struct {
	// Reason is one of the Reason* constants above.
	Reason string
	// Target is the version the pool is to run; Holding what it runs now
	// ("" when it is held as it is).
	Target, Holding string
	// Message says what the pool waits for.
	Message string
}

// A sequenced version is what sequencing decided of a pool's version.
type sequenced struct {
	// version the pool's machines are to run now.
	version string
	// pending says why that is not the target, nil when it is.
	pending *UpgradePending
	// asIs holds every object of the pool as it is: a version could not be
	// read, and nothing may change until it can.
	asIs bool
}

// sequence decides the version the pool's machines run: the target, unless
// the control plane does not run it yet. Then a pool that exists holds its
// current version, and a new one starts at the control plane's. A held
// pool whose version fell out of the platform's skew steps to the control
// plane's version, never past it. A target further behind the control
// plane than the platform supports is refused on its field. Whatever cannot
// be read holds: a pool whose control plane reports no version keeps the
// version it runs, and one whose control plane or machines report a version
// that is not one is held as it is, every object unchanged.
func sequence(target string, observed map[string]Observed, cl *Cluster, cp *ControlPlane, kind provider.ControlPlaneKind, path *field.Path) (sequenced, *field.Error) {
	tv, err := kubeversion.ParseNode(target)
	if err != nil {
		return sequenced{}, field.Invalid(path, target, err.Error())
	}
	cur, unread := currentVersion(observed)
	if unread != nil {
		return sequenced{pending: unread, asIs: true}, nil
	}
	if cp == nil || cp.Version == "" {
		if cur.IsZero() || cur.String() == target {
			return sequenced{version: target}, nil
		}
		return sequenced{version: cur.String(), pending: &UpgradePending{
			Reason: ReasonControlPlaneVersionUnknown, Target: target, Holding: cur.String(),
			Message: fmt.Sprintf("holding the pool at %s, not moving it to %s: %s, and workers never run a newer Kubernetes than their control plane",
				cur, target, unknownControlPlane(cl, cp)),
		}}, nil
	}
	cpv, err := kubeversion.Parse(cp.Version)
	if err != nil {
		//nolint:nilerr // An unreadable version is no error of the pool's: it holds the pool, with a condition naming it.
		return sequenced{asIs: true, pending: &UpgradePending{
			Reason: ReasonVersionUnreadable, Target: target,
			Message: fmt.Sprintf("holding the pool as it is: cannot read the version %q of its control plane %s/%s (status.version), so nothing may change until it reports a Kubernetes version like v1.34.1",
				cp.Version, cp.Kind, cp.Name),
		}}, nil
	}
	if tv.MinorsBehind(cpv) > kind.MaxSkew {
		return sequenced{}, field.Invalid(path, target, fmt.Sprintf("the control plane %s/%s runs %s, and %s: use a version of %s",
			cp.Kind, cp.Name, cp.Version, kind.Skew, skewRange(cpv, kind.MaxSkew)))
	}
	if !tv.NewerThan(cpv) {
		return sequenced{version: target}, nil
	}
	hold := ""
	switch n, ok := cpv.Node(); {
	case !cur.IsZero() && !cur.NewerThan(cpv) && cur.MinorsBehind(cpv) <= kind.MaxSkew:
		hold = cur.String()
	case ok:
		hold = n
	case !cur.IsZero():
		hold = cur.String() // The control plane reports only its minor: no release to step to.
	}
	p := &UpgradePending{Reason: ReasonWaitingForControlPlane, Target: target, Holding: hold}
	if hold == "" {
		// A new pool, and the control plane names no release to start at.
		p.Message = fmt.Sprintf("not creating the pool yet: its control plane %s/%s runs %s, behind the pool's %s, and reports no patch version to start the pool at; workers never run a newer Kubernetes than their control plane",
			cp.Kind, cp.Name, cp.Version, target)
		return sequenced{pending: p, asIs: true}, nil
	}
	p.Message = fmt.Sprintf("holding the pool at %s until the control plane %s/%s runs %s (it runs %s): workers never run a newer Kubernetes than their control plane",
		hold, cp.Kind, cp.Name, target, cp.Version)
	return sequenced{version: hold, pending: p}, nil
}

// currentVersion is the version the pool's machines are asked to run now:
// the lowest of its observed MachineDeployments and MachinePool, zero for
// a new pool. A version that is not one holds the pool: unread says so.
func currentVersion(observed map[string]Observed) (cur kubeversion.Version, unread *UpgradePending) {
	for _, k := range sortedKeys(observed) {
		o := observed[k]
		if !isBacking(k) || o.Version == "" {
			continue
		}
		v, err := kubeversion.ParseNode(o.Version)
		if err != nil {
			return kubeversion.Version{}, &UpgradePending{Reason: ReasonVersionUnreadable, Message: fmt.Sprintf(
				"holding the pool as it is: cannot read the version %q of %s (spec.template.spec.version): %v; nothing changes until it is fixed",
				o.Version, o.Name, err)}
		}
		if cur.IsZero() || cur.NewerThan(v) {
			cur = v
		}
	}
	return cur, nil
}

// unknownControlPlane says why the control plane's version is not known.
func unknownControlPlane(cl *Cluster, cp *ControlPlane) string {
	switch {
	case cp != nil:
		return fmt.Sprintf("its control plane %s/%s reports no version (status.version) yet", cp.Kind, cp.Name)
	case cl == nil || cl.ControlPlaneKind == "":
		return "its Cluster names no control plane (spec.controlPlaneRef)"
	}
	return fmt.Sprintf("the function cannot read the version of its control plane %s/%s, a kind it does not know", cl.ControlPlaneKind, cl.ControlPlaneName)
}

// skewRange names the versions a node may run under a control plane.
func skewRange(cp kubeversion.Version, maxSkew int) string {
	if maxSkew == 0 {
		return cp.Minor()
	}
	return fmt.Sprintf("%s to %s", cp.MinorsBefore(maxSkew), cp.Minor())
}
