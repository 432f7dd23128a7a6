//go:build fleetnodepool_break_retention

package plan

// builtBroken switches template retention off in a test-only build: the
// plan drops a template as soon as the spec no longer needs it, even while
// a MachineSet still clones machines from it. Never ship this build.
const builtBroken = ruleRetention
