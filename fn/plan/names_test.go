package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestName(t *testing.T) {
	long := strings.Repeat("very-long-cluster-name-", 4)
	cases := map[string]struct {
		reason string
		parts  []string
		hash   string
		want   string
	}{
		"Short": {
			reason: "Short parts are joined with dashes.",
			parts:  []string{"prod-eu-1", "workers", "eu-west-1a"},
			want:   "prod-eu-1-workers-eu-west-1a",
		},
		"EmptyZone": {
			reason: "Empty parts are skipped.",
			parts:  []string{"prod", "workers", ""},
			want:   "prod-workers",
		},
		"Sanitized": {
			reason: "Characters a DNS label cannot hold become dashes.",
			parts:  []string{"Prod", "workers", "zone_1"},
			want:   "prod-workers-zone-1",
		},
		"Long": {
			reason: "A long name is cut to 63 characters with a hash of the whole.",
			parts:  []string{long, "workers"},
			want:   "very-long-cluster-name-very-long-cluster-name-very-lon-" + Hash([]byte(long[:len(long)-1]+"-workers")),
		},
		"HashedLong": {
			reason: "A hashed name keeps its content hash at the end, whatever the length.",
			parts:  []string{long, "workers"},
			hash:   "0123abcd",
			want:   "very-long-cluster-name-very-long-cluster-name-" + Hash([]byte(long[:len(long)-1]+"-workers")) + "-0123abcd",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Name(tc.parts...)
			if tc.hash != "" {
				got = HashedName(tc.hash, tc.parts...)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nName(...): -want, +got:\n%s", tc.reason, diff)
			}
			if msgs := validation.IsDNS1123Label(got); len(msgs) > 0 {
				t.Errorf("%s\n%q is not a DNS-1123 label: %v", tc.reason, got, msgs)
			}
		})
	}
}
