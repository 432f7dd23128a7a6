//go:build tools

// Package tools pins the Crossplane core binary (crossplane/v2 cmd/crossplane).
package tools

import (
	_ "github.com/crossplane/crossplane/v2/cmd/crossplane"
)
