// Package compose adapts the planning core to Crossplane's RunFunction: it
// decodes the request (the FleetNodePool, the policy input, the observed
// composed resources and the required ones), calls plan, and encodes the
// desired Cluster API objects, the XR's status and conditions into the
// response. request.go reads the request, response.go writes the response,
// events.go adds the pool's events (the transitions of its state), cache.go
// remembers planned pools, metrics.go counts what the function does (and
// fatal.go, why a result is Fatal).
package compose

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/crossplane/function-sdk-go/errors"
	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/response"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
)

// Error strings.
const (
	errFmtPanic = "cannot compose the FleetNodePool: the function hit a bug (%v); please report it"
)

// Function is the FleetNodePool composition function.
type Function struct {
	fnv1.UnimplementedFunctionRunnerServiceServer

	log     logging.Logger
	planner *plan.Planner
	// compose answers a request at an instant: planPool, behind the cache
	// if there is one.
	compose  func(*fnv1.RunFunctionRequest, time.Time) *planned
	cache    *planCache
	registry prometheus.Registerer
	metrics  *metrics
	clock    func() time.Time
}

// An Option configures a Function.
type Option func(*Function)

// WithLogger sets the logger.
func WithLogger(l logging.Logger) Option { return func(f *Function) { f.log = l } }

// WithPlanner sets the planner: package providers lists the clouds the
// function ships (fn/main.go wires them).
func WithPlanner(p *plan.Planner) Option { return func(f *Function) { f.planner = p } }

// WithCacheSize sets how many planned pools the function remembers; 0
// disables the cache.
func WithCacheSize(n int) Option {
	return func(f *Function) {
		f.cache = nil
		if n > 0 {
			f.cache = newPlanCache(n)
		}
	}
}

// WithClock sets the clock planning reads (maintenance windows, the rollout
// queue): tests inject one. The default is time.Now.
func WithClock(now func() time.Time) Option { return func(f *Function) { f.clock = now } }

// WithMetrics registers the function's metrics with r: the plan cache's
// hits, misses and size, how long plans take, the Fatal results, the
// refused changes and the pools' events.
func WithMetrics(r prometheus.Registerer) Option { return func(f *Function) { f.registry = r } }

// New returns the function.
func New(o ...Option) *Function {
	f := &Function{log: logging.NewNopLogger(), planner: plan.New(), cache: newPlanCache(DefaultCacheSize), metrics: newMetrics(), clock: time.Now}
	for _, fn := range o {
		fn(f)
	}
	planPool := f.metrics.timed(f.planPool)
	f.compose = func(req *fnv1.RunFunctionRequest, now time.Time) *planned {
		return planPool(req, f.waves(req), now)
	}
	if f.cache != nil {
		f.compose = f.cache.wrap(planPool, f.waves)
	}
	if f.registry != nil {
		f.metrics.register(f.registry)
		if f.cache != nil {
			f.registry.MustRegister(f.cache)
		}
	}
	return f
}

// RunFunction composes the Cluster API objects of one FleetNodePool.
func (f *Function) RunFunction(_ context.Context, req *fnv1.RunFunctionRequest) (rsp *fnv1.RunFunctionResponse, _ error) {
	// No input may crash the server that serves every FleetNodePool: a bug
	// becomes a Fatal result for the one XR that hit it.
	defer func() {
		if r := recover(); r != nil {
			f.log.Info("Recovered from a panic", "panic", r, "stack", string(debug.Stack()))
			rsp = response.To(req, response.DefaultTTL)
			response.Fatal(rsp, errors.Errorf(errFmtPanic, r))
			f.metrics.fatal.WithLabelValues(FatalInternalError).Inc()
		}
	}()
	return f.run(req), nil
}

// run is RunFunction without its guard against panics.
func (f *Function) run(req *fnv1.RunFunctionRequest) *fnv1.RunFunctionResponse {
	now := f.clock()
	rsp := response.To(req, response.DefaultTTL)
	p := f.compose(req, now)
	apply(rsp, p, now)
	f.events(req, rsp, p)
	if p.fatal != nil {
		f.metrics.fatal.WithLabelValues(fatalReason(p.fatal)).Inc()
	}
	return rsp
}

// planPool answers a request: it reads the pool from it, with what the
// markers of the earlier waves say (Function.waves), plans the pool and
// encodes the plan. The pool's Cluster decides its provider and backend:
// until Crossplane has fetched it (it calls again at once), the answer only
// asks for it.
func (f *Function) planPool(req *fnv1.RunFunctionRequest, fleet map[string]plan.WaveView, now time.Time) *planned {
	in, err := f.decode(req, fleet)
	if err != nil {
		return &planned{fatal: err}
	}
	in.Now = now
	log := f.log.WithValues("tag", req.GetMeta().GetTag(), "namespace", in.Namespace, "name", in.Name)
	cell, err := f.remote(req, &in)
	switch {
	case err != nil:
		// What the cell holds cannot be read: keep all as it is.
		return &planned{fatal: err}
	case cell != nil && cell.waiting:
		return cell.holding(req)
	}
	reqs, resolved, err := f.require(req, &in)
	if err != nil || !resolved {
		return &planned{requirements: reqs, fatal: err}
	}

	pl, err := f.planner.Plan(in)
	if err != nil {
		// A Fatal result stops Crossplane before it applies or deletes
		// anything: the running pool is left alone. The CRDs it read stay
		// required, so that installing the provider wakes it.
		var ns *plan.NotServedError
		if errors.As(err, &ns) {
			withCRDs(reqs, ns.CRDs)
		}
		log.Info("Cannot plan the pool", "error", err)
		return &planned{requirements: reqs, fatal: err}
	}
	withCRDs(reqs, pl.NeedsCRDs)
	switch {
	case pl.NeedsSiblings && cell != nil:
		withCellSiblings(reqs, in.Namespace, in.Spec.ClusterName, cell.name)
		withWaves(reqs, pl.Fleet(), pl.EarlierWaves())
	case pl.NeedsSiblings:
		// Crossplane fetches them and calls again before it applies
		// anything: until then the change holds.
		withSiblings(reqs, in.Namespace, in.Spec.ClusterName)
		withWaves(reqs, pl.Fleet(), pl.EarlierWaves())
	case !pl.NeedsMachineSets:
		// A settled pool: its MachineSets' status changes need not wake it.
		delete(reqs.Resources, requirementMachineSets)
	}
	if !crdsRead(in.CRDs, pl.NeedsCRDs) {
		// Crossplane fetches them and calls again before it applies
		// anything: until then the answer only asks.
		return &planned{requirements: reqs}
	}
	p, err := build(pl)
	switch {
	case err != nil:
	case pl.Refused != nil && pl.Refused.Reason == plan.ReasonCellChanged:
		// What runs is kept where it runs, as it is, whichever cell the
		// spec now names.
		err = asObserved(req, p.resources)
	case cell != nil:
		err = cell.wrap(p)
	}
	if err != nil {
		return &planned{requirements: reqs, fatal: withReason(FatalInternalError, err)}
	}
	p.requirements, p.cacheable = reqs, true
	log.Debug("Planned the pool", "resources", len(pl.Resources), "version", pl.Status.Version)
	return p
}

// crdsRead reports whether Crossplane sent every named CRD (or said it
// does not exist).
func crdsRead(read map[string]*plan.CRD, names []string) bool {
	for _, n := range names {
		if _, ok := read[n]; !ok {
			return false
		}
	}
	return true
}
