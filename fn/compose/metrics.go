package compose

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
)

// Label of the metrics counted by reason.
const labelReason = "reason"

// planBuckets suit plans from a tenth of a millisecond (a small pool) to a
// few hundred (a pool of the last wave reading thousands of markers).
var planBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25}

// refusalReasons are the reasons planning refuses a change for; another
// one is counted all the same, from its first refusal.
var refusalReasons = []string{plan.ReasonBackingReplaced, plan.ReasonClusterChanged, plan.ReasonProviderChanged, plan.ReasonImmutableField, plan.ReasonCellChanged}

// metrics are the function's own, besides the plan cache's (cache.go).
// Each Function has its own: WithMetrics registers them.
type metrics struct {
	planSeconds prometheus.Histogram
	fatal       *prometheus.CounterVec
	refused     *prometheus.CounterVec
	events      *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		planSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "function_fleetnodepool_plan_duration_seconds",
			Help: "Time to decode, plan and encode a pool the plan cache did not answer for (a miss, or every request with the cache off). " +
				"Cache hits are not observed.",
			Buckets: planBuckets,
		}),
		fatal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "function_fleetnodepool_fatal_results_total",
			Help: "Fatal results returned, by reason: InvalidPool (the FleetNodePool's spec), InvalidPolicy (the Composition step's input), " +
				"ClusterNotFound, KindNotServed (a kind it composes, at its version, per the management cluster's CRDs), CellUnreachable (its cell's Cluster or control plane cannot be read), UnsupportedCrossplane (no required resources: older than v2.2), InvalidRequest (no observed XR), " +
				"InternalError (a bug: see the log). Crossplane applies nothing for a Fatal result, and calls again.",
		}, []string{labelReason}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "function_fleetnodepool_changes_refused_total",
			Help: "Changes refused because they would delete the backing of a running pool or move it, or its running machine pool " +
				"cannot make them in place, by reason (BackingReplaced, ClusterChanged, ProviderChanged, CellChanged, ImmutableField): counted when a pool's refusal starts or another change is refused (its ChangeRefused " +
				"event), not on each reconcile while it lasts.",
		}, []string{labelReason}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "function_fleetnodepool_events_total",
			Help: "Events of pools returned as results, by reason (RolloutStarted, RolloutFinished, RolloutHeld, WaveHalted, " +
				"ChangeRefused): one per transition of a pool's state. Crossplane records each as a Kubernetes Event, which its event " +
				"recorder may drop (client-go's spam filter: 25 events of a type per XR, then one per 5 minutes); this count is not.",
		}, []string{labelReason}),
	}
	// Every reason from zero, so that a rate over any of them is defined.
	for _, r := range fatalReasons {
		m.fatal.WithLabelValues(r)
	}
	for _, r := range refusalReasons {
		m.refused.WithLabelValues(r)
	}
	for _, r := range plan.EventReasons() {
		m.events.WithLabelValues(r)
	}
	return m
}

// register the metrics with r.
func (m *metrics) register(r prometheus.Registerer) {
	r.MustRegister(m.planSeconds, m.fatal, m.refused, m.events)
}

// A planFunc plans a pool (Function.planPool).
type planFunc func(*fnv1.RunFunctionRequest, map[string]plan.WaveView, time.Time) *planned

// timed is next, observed by the plan duration histogram.
func (m *metrics) timed(next planFunc) planFunc {
	return func(req *fnv1.RunFunctionRequest, fleet map[string]plan.WaveView, now time.Time) *planned {
		start := time.Now()
		p := next(req, fleet, now)
		m.planSeconds.Observe(time.Since(start).Seconds())
		return p
	}
}
