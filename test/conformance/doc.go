// Package conformance is the API conformance tier: every object the
// function renders, for every example, is server-side applied (created,
// updated to the next revision, re-applied, rescaled, re-applied) to a real
// kube-apiserver holding the pinned CAPI, CAPA, CAPZ and CAPD CRDs, and
// judged by the upstream admission webhooks of the real managers run out of
// cluster: Cluster API core and kubeadm bootstrap (their controllers idle,
// sandbox.StartCAPIWebhooks), CAPA and CAPZ (sandbox.StartProviders). The
// tier fails if a composed kind has an upstream webhook the API server does
// not call (judges_test.go, unless unjudged says why), or if an admitted
// object is stored without a field the function set. Live checks, negative
// controls and the managers' health prove the judges run and can fail.
//
// Run with `make test-conformance` (build tag conformance). The tiers,
// their tags, targets and environments: test/README.md.
package conformance
