package plan

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
)

func TestWindowAt(t *testing.T) {
	hours := func(h float64) metav1.Duration {
		return metav1.Duration{Duration: time.Duration(h * float64(time.Hour))}
	}
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	type want struct {
		Open bool
		Edge time.Time
	}
	cases := map[string]struct {
		reason string
		w      v1beta1.MaintenanceWindow
		now    string
		want   want
	}{
		"BeforeOpening": {
			reason: "Before today's opening, the window opens today.",
			w:      v1beta1.MaintenanceWindow{Name: "w", Start: "22:00", Duration: hours(2)},
			now:    "2026-11-29T21:59:00Z",
			want:   want{Edge: utc("2026-11-29T22:00:00Z")},
		},
		"AtOpening": {
			reason: "At its opening the window is open, until it closes.",
			w:      v1beta1.MaintenanceWindow{Name: "w", Start: "22:00", Duration: hours(2)},
			now:    "2026-11-29T22:00:00Z",
			want:   want{Open: true, Edge: utc("2026-11-30T00:00:00Z")},
		},
		"AtClosing": {
			reason: "At its closing the window is closed, and opens again tomorrow.",
			w:      v1beta1.MaintenanceWindow{Name: "w", Start: "22:00", Duration: hours(2)},
			now:    "2026-11-30T00:00:00Z",
			want:   want{Edge: utc("2026-11-30T22:00:00Z")},
		},
		"AcrossMidnight": {
			reason: "A window opened yesterday evening is still open after midnight.",
			w:      v1beta1.MaintenanceWindow{Name: "w", Start: "22:00", Duration: hours(4)},
			now:    "2026-11-30T01:00:00Z",
			want:   want{Open: true, Edge: utc("2026-11-30T02:00:00Z")},
		},
		"Weekdays": {
			reason: "A window on Saturdays only, on Sunday, opens next Saturday.",
			w:      v1beta1.MaintenanceWindow{Name: "w", Days: []v1beta1.Weekday{"Saturday"}, Start: "02:00", Duration: hours(3)},
			now:    "2026-11-29T03:00:00Z",
			want:   want{Edge: utc("2026-12-05T02:00:00Z")},
		},
		"WeekLong": {
			reason: "A window opened on last Monday for 6 days is open on Sunday.",
			w:      v1beta1.MaintenanceWindow{Name: "w", Days: []v1beta1.Weekday{"Monday"}, Start: "00:00", Duration: hours(150)},
			now:    "2026-11-29T03:00:00Z",
			want:   want{Open: true, Edge: utc("2026-11-29T06:00:00Z")},
		},
		"TimeZone": {
			reason: "02:00 in New York (UTC-5 in winter) is 07:00 UTC.",
			w:      v1beta1.MaintenanceWindow{Name: "w", Start: "02:00", Duration: hours(1), TimeZone: "America/New_York"},
			now:    "2026-11-29T06:30:00Z",
			want:   want{Edge: utc("2026-11-29T07:00:00Z")},
		},
		"DaylightSaving": {
			reason: "In summer Berlin is UTC+2: 02:30 local is 00:30 UTC (in winter 01:30).",
			w:      v1beta1.MaintenanceWindow{Name: "w", Start: "02:30", Duration: hours(1), TimeZone: "Europe/Berlin"},
			now:    "2026-07-01T00:00:00Z",
			want:   want{Edge: utc("2026-07-01T00:30:00Z")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ws, errs := parseWindows(&v1beta1.RolloutPolicy{MaintenanceWindows: []v1beta1.MaintenanceWindow{tc.w}})
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			open, edge := ws["w"].at(utc(tc.now))
			if diff := cmp.Diff(tc.want, want{open, edge.UTC()}); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestParseWindowsErrors(t *testing.T) {
	ok := v1beta1.MaintenanceWindow{Name: "w", Start: "22:00", Duration: metav1.Duration{Duration: time.Hour}}
	with := func(mod func(*v1beta1.MaintenanceWindow)) v1beta1.MaintenanceWindow { w := ok; mod(&w); return w }
	cases := map[string]struct {
		reason string
		pol    v1beta1.RolloutPolicy
		want   []string
	}{
		"Valid": {reason: "A valid window parses.", pol: v1beta1.RolloutPolicy{MaintenanceWindows: []v1beta1.MaintenanceWindow{ok}, DefaultMaintenanceWindow: "w"}},
		"Start": {
			reason: "A start that is not HH:MM names its field.",
			pol:    v1beta1.RolloutPolicy{MaintenanceWindows: []v1beta1.MaintenanceWindow{with(func(w *v1beta1.MaintenanceWindow) { w.Start = "25:00" })}},
			want:   []string{"input.rollouts.maintenanceWindows[0].start"},
		},
		"Duration": {
			reason: "A duration over a week names its field.",
			pol: v1beta1.RolloutPolicy{MaintenanceWindows: []v1beta1.MaintenanceWindow{with(func(w *v1beta1.MaintenanceWindow) {
				w.Duration = metav1.Duration{Duration: 200 * time.Hour}
			})}},
			want: []string{"input.rollouts.maintenanceWindows[0].duration"},
		},
		"TimeZone": {
			reason: "An unknown time zone names its field.",
			pol:    v1beta1.RolloutPolicy{MaintenanceWindows: []v1beta1.MaintenanceWindow{with(func(w *v1beta1.MaintenanceWindow) { w.TimeZone = "Mars/Olympus" })}},
			want:   []string{"input.rollouts.maintenanceWindows[0].timeZone"},
		},
		"Day": {
			reason: "An unknown day names its field.",
			pol:    v1beta1.RolloutPolicy{MaintenanceWindows: []v1beta1.MaintenanceWindow{with(func(w *v1beta1.MaintenanceWindow) { w.Days = []v1beta1.Weekday{"Sat"} })}},
			want:   []string{"input.rollouts.maintenanceWindows[0].days[0]"},
		},
		"Duplicate": {
			reason: "Two windows of one name name the second.",
			pol:    v1beta1.RolloutPolicy{MaintenanceWindows: []v1beta1.MaintenanceWindow{ok, ok}},
			want:   []string{"input.rollouts.maintenanceWindows[1].name"},
		},
		"Default": {
			reason: "A default window the policy does not define names its field.",
			pol:    v1beta1.RolloutPolicy{MaintenanceWindows: []v1beta1.MaintenanceWindow{ok}, DefaultMaintenanceWindow: "nightly"},
			want:   []string{"input.rollouts.defaultMaintenanceWindow"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, errs := parseWindows(&tc.pol)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want, +got fields:\n%s", tc.reason, diff)
			}
		})
	}
}
