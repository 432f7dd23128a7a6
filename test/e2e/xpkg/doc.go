// Package xpkg is the package tier (build tag xpkg, `make test-xpkg`): it
// inspects the Function and Configuration packages `make xpkg` builds with
// the pinned crossplane CLI, from the directory XPKG_DIR.
//
// The tiers, their tags, targets and environments: test/README.md.
package xpkg
