package sandbox

import "testing"

func TestIncrease(t *testing.T) {
	cases := map[string]struct {
		reason  string
		samples []float64
		want    float64
	}{
		"None":      {reason: "No sample, no increase.", want: 0},
		"One":       {reason: "One sample is no interval.", samples: []float64{7}, want: 0},
		"Growing":   {reason: "A counter that only grows increased by last minus first.", samples: []float64{10, 12, 15}, want: 5},
		"Restart":   {reason: "A drop is a restart: the counter grew by what it had before and all it counted since.", samples: []float64{10, 14, 3, 5}, want: 9},
		"Unchanged": {reason: "A flat counter did not grow.", samples: []float64{4, 4, 4}, want: 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Increase(tc.samples); got != tc.want {
				t.Errorf("%s\nIncrease(%v): want %v, got %v", tc.reason, tc.samples, tc.want, got)
			}
		})
	}
}
