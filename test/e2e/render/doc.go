// Package render is the render tier (build tag render, `make test-render`):
// every example validated against the generated XRD with the pinned
// crossplane CLI, and rendered through the real crossplane CLI and core
// binary against the built function, compared with the reviewed golden
// files in testdata/ (`make golden` rewrites them: review the diff); edits,
// channel bumps, lifecycle fixtures and backends through the same engine;
// invalid examples fail with the message they declare.
//
// The tiers, their tags, targets and environments: test/README.md.
package render
