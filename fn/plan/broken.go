//go:build !fleetnodepool_break_retention

package plan

// builtBroken is the rules a build switches off: none. The fleet e2e builds
// the function with the fleetnodepool_break_retention tag (broken_retention.go)
// to prove its invariant watcher sees templates deleted under a MachineSet.
const builtBroken rule = 0
