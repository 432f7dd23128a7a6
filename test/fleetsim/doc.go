// Package fleetsim is a model-based simulation of a fleet of FleetNodePools,
// at a scale no single API server test carries: thousands of pools over
// hundreds of self-managed kubeadm clusters on AWS.
//
// The real function runs in the loop, in process: every reconcile builds a
// real RunFunctionRequest (protobuf Structs) from the model's state and
// calls the function's RunFunction, wired as fn/main.go wires it. Around it sit three small models:
//
//   - Crossplane (crossplane.go): requirement iterations with the previous
//     reconcile's requirements pre-satisfied, required resources fetched by
//     name or labels (a Cluster's MachineDeployments, with the annotations
//     the function set on them, its MachineSets with their
//     creationTimestamp, and no MachinePools;
//     ConfigMaps, the rollout markers, by labels in every namespace, filed
//     by fleet and wave so that a fetch reads its wave alone), a
//     Fatal result applies nothing, composed resources
//     garbage-collected before the desired ones are server-side applied
//     (fields the function omits that another owner set, such as the
//     replicas of an autoscaled MachineDeployment, keep their live value),
//     and the name a composition resource key first got is kept.
//
//   - Cluster API (capi.go): a MachineDeployment whose template changed gets
//     a new MachineSet, and so does one whose spec.rollout.after is past
//     and later than its MachineSet's creation (a rotation, as Cluster API
//     v1.14's mdutil decides); MachineSets move one machine per step within
//     maxSurge/maxUnavailable; empty old MachineSets go; KubeadmControlPlanes
//     upgrade one minor at a time and report status.version when done; the
//     cluster-autoscaler resizes autoscaled MachineDeployments.
//
//   - The platform (events.go): channel bumps while control planes are
//     behind, staggered control plane upgrades, machine class changes; and
//     the rollout gates: the policy paused and a channel paused for a few
//     steps, pools deferred (some with a value neither true nor false),
//     maintenance windows (the policy's default, others labelled on some
//     Clusters, one in a time zone, a pool's own), Clusters annotated with
//     a concurrency of 1 or 2 besides the policy's 3, a pool holding its
//     Cluster's rollout sequence.
//
//   - The waves (waves.go, issue #14), on a schedule of their own: a
//     channel bump rolled through a canary wave (1% of the Clusters, by a
//     Cluster label), a staging wave (9%) and the rest, soaking 2h each; a
//     canary pool whose new machines never become ready until step 30, so
//     that it fails 12h (the halt timeout) after it started and halts the
//     later waves until it recovers.
//
//   - Node rotation (rotation.go, issue #21), on a schedule of its own:
//     every pool created at once under the policy's input.rotation (a max
//     node age and spread) and gates that hold sometimes; the model counts
//     the rotations asked (a new spec.rollout.after) and made, the pools
//     rotating at once and the oldest machine running. Such long runs may
//     be quiet (Config.Quiet): a pool is reconciled only when what it reads
//     changed, its gates changed, or its next rotation is due.
//
// The model has its own clock, an hour a step from a Monday midnight UTC,
// which the function is given (compose.WithClock), so that windows open and
// close within a simulation. The model reads the gates itself (gates.go),
// independently of fn/plan: each Cluster's concurrency, and which pools may
// not start a disruptive rollout now (paused, deferred, window closed or
// unknown, holding the sequence); and the waves, from what the pools'
// machines run rather than from the markers the function wrote: which
// pools an earlier wave holds (a pool not at the target, or soaking) or
// halts (a pool not at the target the halt timeout after it started).
//
// Every step the fleet invariants (test/invariant, shared with the
// planner's property test and the fleet e2e's watcher) are checked on the
// model state (a new spec.rollout.after of a MachineDeployment counts as a
// new template: the start of a disruptive rollout),
// RolloutConcurrencyBounded, NoRolloutStartWhileHeld,
// NoStartBeforeEarlierWaves and NoStartAfterHalt among them, and check.go's
// rules on every response; the simulation measures the function's CPU time
// and allocations per call (sim.go, meter.go) and the largest request
// (reqsize.go). It runs in the unit tier: test/README.md lists the tiers.
package fleetsim
