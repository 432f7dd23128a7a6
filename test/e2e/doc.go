// Package e2e holds the end-to-end test tiers, run by `make test`:
//
//   - render (build tag e2e, TestRender*): every example through the real
//     crossplane CLI and core binary against the built function, compared
//     with reviewed golden files; invalid examples must fail with the field
//     message they declare.
//
// Regenerate golden files with `make golden` and review the diff.
package e2e
