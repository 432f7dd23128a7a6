package plan

import (
	"fmt"
	"strconv"
	"strings"
)

// A ControlPlane is what planning reads of the Cluster's control plane.
type ControlPlane struct {
	// Kind and Name of the control plane object.
	Kind, Name string
	// Version the control plane runs (status.version), "" when unknown.
	Version string
}

// controlPlaneAPIVersions are the API versions of the control-plane kinds
// whose status.version the function reads.
var controlPlaneAPIVersions = map[string]string{
	"KubeadmControlPlane":         "controlplane.cluster.x-k8s.io/v1beta2",
	"AWSManagedControlPlane":      "controlplane.cluster.x-k8s.io/v1beta2",
	"AzureASOManagedControlPlane": "infrastructure.cluster.x-k8s.io/v1beta1",
	"AzureManagedControlPlane":    "infrastructure.cluster.x-k8s.io/v1beta1",
}

// ControlPlaneAPIVersion is the API version to read a control-plane kind
// at, "" for kinds the function does not know.
func ControlPlaneAPIVersion(kind string) string { return controlPlaneAPIVersions[kind] }

// An UpgradePending says the pool is held below its target version until
// the control plane runs it.
type UpgradePending struct {
	Target, Holding, ControlPlane, ControlPlaneVersion string
}

func (u *UpgradePending) String() string {
	return fmt.Sprintf("holding the pool at %s until the control plane %s runs %s (it runs %s): workers never run a newer Kubernetes than their control plane",
		u.Holding, u.ControlPlane, u.Target, u.ControlPlaneVersion)
}

// sequence decides the version the pool's machines run: the target, unless
// the control plane does not run it yet. Then a pool that exists holds its
// current version, and a new one starts at the control plane's. Kubeadm
// joins only nodes of the control plane's minor (Cluster API's
// KubeadmVersionSkew preflight), so with kubeadm a held pool whose minor
// fell behind steps to the control plane's version, never past it. With
// kubeadm, a target of an older minor than the control plane's could never
// create a machine: behind says so.
func sequence(target, current string, cp *ControlPlane, kubeadm bool) (v string, pending *UpgradePending, behind bool) {
	if cp == nil || cp.Version == "" {
		return target, nil, false
	}
	cpv, ok := parseVersion(cp.Version)
	tv, _ := parseVersion(target)
	if !ok {
		return target, nil, false
	}
	if !tv.newerThan(cpv) {
		return target, nil, kubeadm && tv.minorBehind(cpv)
	}
	hold := cpv.String()
	if cv, ok := parseVersion(current); ok && current != "" && !cv.newerThan(cpv) && (!kubeadm || !cv.minorBehind(cpv)) {
		hold = current
	}
	return hold, &UpgradePending{Target: target, Holding: hold, ControlPlane: cp.Kind + "/" + cp.Name, ControlPlaneVersion: cp.Version}, false
}

// version is a Kubernetes version. A control plane may report only a minor
// (EKS: "1.33"): its patch is then unknown, and only minors compare.
type version struct {
	major, minor, patch int
	hasPatch            bool
}

func parseVersion(s string) (version, bool) {
	parts := strings.Split(strings.TrimPrefix(s, "v"), ".")
	if len(parts) < 2 || len(parts) > 3 {
		return version{}, false
	}
	var v version
	var err error
	if v.major, err = strconv.Atoi(parts[0]); err != nil {
		return version{}, false
	}
	if v.minor, err = strconv.Atoi(parts[1]); err != nil {
		return version{}, false
	}
	if len(parts) == 3 {
		if v.patch, err = strconv.Atoi(strings.SplitN(parts[2], "-", 2)[0]); err != nil {
			return version{}, false
		}
		v.hasPatch = true
	}
	return v, true
}

// newerThan reports whether v is newer than o, comparing patches only when
// both have one.
func (v version) newerThan(o version) bool {
	if v.major != o.major {
		return v.major > o.major
	}
	if v.minor != o.minor {
		return v.minor > o.minor
	}
	return v.hasPatch && o.hasPatch && v.patch > o.patch
}

// minorBehind reports whether v is of an older minor than o.
func (v version) minorBehind(o version) bool {
	return v.major < o.major || v.major == o.major && v.minor < o.minor
}

func (v version) String() string {
	return fmt.Sprintf("v%d.%d.%d", v.major, v.minor, v.patch)
}
