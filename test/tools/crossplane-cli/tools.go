//go:build tools

// Package tools pins the crossplane CLI (crossplane/cli/v2 cmd/crossplane).
package tools

import (
	_ "github.com/crossplane/cli/v2/cmd/crossplane"
)
