package sandbox

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWithFlags(t *testing.T) {
	cases := map[string]struct {
		reason      string
		flags, more []string
		want        []string
	}{
		"Added": {
			reason: "A flag not given yet is added.",
			flags:  []string{"--debug", "--poll=15s"},
			more:   []string{"--max-reconcile-rate=10"},
			want:   []string{"--debug", "--poll=15s", "--max-reconcile-rate=10"},
		},
		"Replaced": {
			reason: "A flag given again replaces the first (kingpin refuses a repeat), its value form or its negation alike.",
			flags:  []string{"--debug", "--poll=15s", "--enable-watches"},
			more:   []string{"--poll=10m", "--no-debug"},
			want:   []string{"--enable-watches", "--poll=10m", "--no-debug"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, withFlags(tc.flags, tc.more)); diff != "" {
				t.Errorf("%s\nwithFlags(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}
