package kubeversion

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	type want struct {
		Minor string
		Node  string
		Err   bool
	}
	cases := map[string]struct {
		reason string
		in     string
		node   bool // ParseNode rather than Parse.
		want   want
	}{
		"Release":           {reason: "A release.", in: "v1.33.4", want: want{Minor: "v1.33", Node: "v1.33.4"}},
		"NoPrefix":          {reason: "Control planes may report no v prefix.", in: "1.33.4", want: want{Minor: "v1.33", Node: "v1.33.4"}},
		"BuildMetadata":     {reason: "Distributions add build metadata.", in: "v1.33.4+vmware.1", want: want{Minor: "v1.33", Node: "v1.33.4+vmware.1"}},
		"PreRelease":        {reason: "A pre-release is a version.", in: "v1.34.0-rc.1", want: want{Minor: "v1.34", Node: "v1.34.0-rc.1"}},
		"MinorOnly":         {reason: "EKS reports a minor: it names no release a machine runs.", in: "1.33", want: want{Minor: "v1.33"}},
		"Garbage":           {reason: "Not a version.", in: "latest", want: want{Err: true}},
		"Empty":             {reason: "No version.", in: "", want: want{Err: true}},
		"Spaces":            {reason: "Padding is not part of a version.", in: " v1.33.4", want: want{Err: true}},
		"NodeRelease":       {reason: "A pool's version.", in: "v1.33.4", node: true, want: want{Minor: "v1.33", Node: "v1.33.4"}},
		"NodeBuildMetadata": {reason: "Cluster API accepts build metadata on a machine's version.", in: "v1.33.4+vmware.1", node: true, want: want{Minor: "v1.33", Node: "v1.33.4+vmware.1"}},
		"NodeNoPrefix":      {reason: "Cluster API requires the v prefix on a machine's version.", in: "1.33.4", node: true, want: want{Err: true}},
		"NodeMinorOnly":     {reason: "A machine runs a release, not a minor.", in: "v1.33", node: true, want: want{Err: true}},
		"NodeLeadingZero":   {reason: "Semantic versions have no leading zeros.", in: "v1.033.4", node: true, want: want{Err: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			parse := Parse
			if tc.node {
				parse = ParseNode
			}
			v, err := parse(tc.in)
			got := want{Err: err != nil}
			if err == nil {
				got.Minor = v.Minor()
				got.Node, _ = v.Node()
				if v.String() != tc.in {
					t.Errorf("%s\nString(): want %q as written, got %q", tc.reason, tc.in, v.String())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nparse(%q): -want, +got:\n%s", tc.reason, tc.in, diff)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	cases := map[string]struct {
		reason       string
		a, b         string
		want         int
		minorsBehind int
	}{
		"Patch":           {reason: "Patches compare.", a: "v1.33.4", b: "v1.33.5", want: -1},
		"Minor":           {reason: "Minors compare.", a: "v1.34.0", b: "v1.33.9", want: 1},
		"MinorOnly":       {reason: "Against a minor-only version only minors compare.", a: "v1.33.9", b: "1.33", want: 0},
		"MinorOnlyBehind": {reason: "A minor behind a minor-only version.", a: "v1.32.9", b: "1.33", want: -1, minorsBehind: 1},
		"BuildMetadata":   {reason: "Build metadata never compares.", a: "v1.33.4+vmware.1", b: "v1.33.4", want: 0},
		"BuildBehind":     {reason: "v1.33.4+vmware.1 is behind v1.34.1.", a: "v1.33.4+vmware.1", b: "v1.34.1", want: -1, minorsBehind: 1},
		"PreRelease":      {reason: "A pre-release comes before its release.", a: "v1.34.0-rc.1", b: "v1.34.0", want: -1},
		"FourBehind":      {reason: "Minors behind count.", a: "v1.30.0", b: "v1.34.1", want: -1, minorsBehind: 4},
		"MajorBehind":     {reason: "A major behind is far behind.", a: "v1.30.0", b: "v2.0.0", want: -1, minorsBehind: 1000},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a, b := MustParse(tc.a), MustParse(tc.b)
			got := []int{a.Compare(b), -b.Compare(a), a.MinorsBehind(b)}
			if diff := cmp.Diff([]int{tc.want, tc.want, tc.minorsBehind}, got); diff != "" {
				t.Errorf("%s\n[Compare, -reverse Compare, MinorsBehind](%s, %s): -want, +got:\n%s", tc.reason, tc.a, tc.b, diff)
			}
		})
	}
}
