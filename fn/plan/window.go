package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fleetnodepool/function-fleetnodepool/apis/input/v1beta1"
)

// maxWindowDuration bounds a maintenance window: a week, after which it
// would overlap its own next opening.
const maxWindowDuration = 7 * 24 * time.Hour

// A window is a maintenance window, parsed.
type window struct {
	name string
	days map[time.Weekday]bool // Empty: every day.
	// hour and minute it opens at, in loc.
	hour, minute int
	duration     time.Duration
	loc          *time.Location
}

// weekday is the day a window's day names, as Go's time package names it.
func weekday(name v1beta1.Weekday) (time.Weekday, bool) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if string(name) == d.String() {
			return d, true
		}
	}
	return 0, false
}

// weekdayNames are the names a window's days may take, sorted.
func weekdayNames() []string {
	out := make([]string, 0, 7)
	for d := time.Sunday; d <= time.Saturday; d++ {
		out = append(out, d.String())
	}
	slices.Sort(out)
	return out
}

// parseWindows reads the policy's maintenance windows, reporting every
// problem on its field.
func parseWindows(pol *v1beta1.RolloutPolicy) (map[string]window, field.ErrorList) {
	if pol == nil {
		return nil, nil
	}
	path := inputPath.Child("rollouts", "maintenanceWindows")
	var errs field.ErrorList
	out := make(map[string]window, len(pol.MaintenanceWindows))
	for i, mw := range pol.MaintenanceWindows {
		p := path.Index(i)
		w := window{name: mw.Name, days: map[time.Weekday]bool{}, duration: mw.Duration.Duration, loc: time.UTC}
		if mw.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), "name the window: pools and Clusters select it by name"))
		} else if _, dup := out[mw.Name]; dup {
			errs = append(errs, field.Duplicate(p.Child("name"), mw.Name))
		}
		for j, d := range mw.Days {
			wd, ok := weekday(d)
			if !ok {
				errs = append(errs, field.NotSupported(p.Child("days").Index(j), d, weekdayNames()))
				continue
			}
			w.days[wd] = true
		}
		if _, err := fmt.Sscanf(mw.Start, "%02d:%02d", &w.hour, &w.minute); err != nil || len(mw.Start) != 5 || w.hour > 23 || w.minute > 59 {
			errs = append(errs, field.Invalid(p.Child("start"), mw.Start, "must be a time of day HH:MM, e.g. 22:00"))
		}
		if w.duration <= 0 || w.duration > maxWindowDuration {
			errs = append(errs, field.Invalid(p.Child("duration"), mw.Duration.Duration.String(), "must be longer than 0 and at most 168h, e.g. 4h"))
		}
		if mw.TimeZone != "" {
			loc, err := time.LoadLocation(mw.TimeZone)
			if err != nil {
				errs = append(errs, field.Invalid(p.Child("timeZone"), mw.TimeZone, "must be an IANA time zone such as Europe/Berlin, or empty for UTC"))
			} else {
				w.loc = loc
			}
		}
		out[mw.Name] = w
	}
	if d := pol.DefaultMaintenanceWindow; d != "" {
		if _, ok := out[d]; !ok {
			errs = append(errs, field.NotSupported(inputPath.Child("rollouts", "defaultMaintenanceWindow"), d, sortedKeys(out)))
		}
	}
	return out, errs
}

// at says whether the window is open at now, and the edge after now where
// that changes: when it closes if open, when it next opens if not.
func (w window) at(now time.Time) (open bool, edge time.Time) {
	local := now.In(w.loc)
	// A window lasts at most a week: the openings of the last eight days
	// and the next eight hold every one that can matter.
	for d := -8; d <= 8; d++ {
		day := time.Date(local.Year(), local.Month(), local.Day()+d, w.hour, w.minute, 0, 0, w.loc)
		if len(w.days) > 0 && !w.days[day.Weekday()] {
			continue
		}
		end := day.Add(w.duration)
		switch {
		case !day.After(now) && now.Before(end):
			if !open || end.After(edge) {
				open, edge = true, end
			}
		case day.After(now) && !open && (edge.IsZero() || day.Before(edge)):
			edge = day
		}
	}
	return open, edge
}

// String describes the window for messages, e.g. "Saturday,Sunday 22:00
// for 4h0m0s Europe/Berlin".
func (w window) String() string {
	days := "every day"
	if len(w.days) > 0 {
		var ds []string
		for d := time.Sunday; d <= time.Saturday; d++ {
			if w.days[d] {
				ds = append(ds, d.String())
			}
		}
		days = strings.Join(ds, ",")
	}
	return fmt.Sprintf("%s %02d:%02d for %s %s", days, w.hour, w.minute, w.duration, w.loc)
}
