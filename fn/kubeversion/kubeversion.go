// Package kubeversion is the function's one Kubernetes version type. Every
// version it reads (a pool's spec.version, a policy channel, a control
// plane's status.version, an observed MachineDeployment's version) and every
// comparison between them goes through it, on top of apimachinery's
// k8s.io/apimachinery/pkg/util/version parser. It understands what real
// distributions report: a "v" prefix or none, build metadata
// (v1.33.4+vmware.1), pre-releases (v1.34.0-rc.1), and minor-only versions
// (EKS reports "1.33").
package kubeversion

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/version"
)

// Error strings.
const (
	errFmtNotVersion = "%q is not a Kubernetes version"
	errFmtNotNode    = "%q is not a Kubernetes version like v1.33.4 (a v, then major.minor.patch, optionally -pre-release or +build)"
)

// A Version is a parsed Kubernetes version. Its zero value is no version.
type Version struct {
	v   *version.Version
	raw string
}

// Parse reads a version as a control plane may report it: with or without
// the v prefix, major.minor or major.minor.patch, with an optional
// pre-release and build metadata.
func Parse(s string) (Version, error) {
	v, err := version.Parse(s)
	if err != nil || strings.TrimSpace(s) != s {
		return Version{}, fmt.Errorf(errFmtNotVersion, s)
	}
	return Version{v: v, raw: s}, nil
}

// ParseNode reads a version a pool's machines run, as Cluster API requires
// it of a MachineDeployment or MachinePool: v, then major.minor.patch, with
// an optional pre-release and build metadata.
func ParseNode(s string) (Version, error) {
	v, err := version.ParseSemantic(s)
	if err != nil || !strings.HasPrefix(s, "v") || strings.TrimSpace(s) != s {
		return Version{}, fmt.Errorf(errFmtNotNode, s)
	}
	return Version{v: v, raw: s}, nil
}

// MustParse is Parse for versions written in code: it panics on a bad one.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// IsZero reports whether v is no version.
func (v Version) IsZero() bool { return v.v == nil }

// hasPatch reports whether v has a patch: a minor-only version does not.
func (v Version) hasPatch() bool { return len(v.v.Components()) > 2 }

// Compare returns -1, 0 or 1 as v is older than, the same as, or newer
// than o. Where either has no patch (a minor-only version), only majors and
// minors compare. Build metadata never compares.
func (v Version) Compare(o Version) int {
	if !v.hasPatch() || !o.hasPatch() {
		return cmpInt(int(v.v.Major())*1000+int(v.v.Minor()), int(o.v.Major())*1000+int(o.v.Minor()))
	}
	switch {
	case v.v.LessThan(o.v):
		return -1
	case o.v.LessThan(v.v):
		return 1
	}
	return 0
}

// NewerThan reports whether v is newer than o.
func (v Version) NewerThan(o Version) bool { return v.Compare(o) > 0 }

// MinorsBehind is how many minors v is older than o: 0 when v is of o's
// minor or newer. A major behind counts as far behind.
func (v Version) MinorsBehind(o Version) int {
	if v.v.Major() != o.v.Major() {
		if v.v.Major() < o.v.Major() {
			return 1000
		}
		return 0
	}
	return max(int(o.v.Minor())-int(v.v.Minor()), 0)
}

// Minor is v's minor with the v prefix, e.g. v1.34 of v1.34.1.
func (v Version) Minor() string { return fmt.Sprintf("v%d.%d", v.v.Major(), v.v.Minor()) }

// MinorsBefore is the minor n minors older than v's, e.g. v1.31 for 3
// before v1.34.1.
func (v Version) MinorsBefore(n int) string {
	return fmt.Sprintf("v%d.%d", v.v.Major(), max(int(v.v.Minor())-n, 0))
}

// String is v as it was written.
func (v Version) String() string { return v.raw }

// Node is v as a pool's machines may run it (v1.34.1, with its pre-release
// and build metadata): false for a minor-only version, which names no
// release a machine could run.
func (v Version) Node() (string, bool) {
	if v.v == nil || !v.hasPatch() {
		return "", false
	}
	return "v" + v.v.String(), true
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
