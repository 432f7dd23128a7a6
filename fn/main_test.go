package main

import (
	"strings"
	"testing"
)

// TestRefusesToServeWithoutTLS checks that the function will not serve
// plaintext unless told to with --insecure.
func TestRefusesToServeWithoutTLS(t *testing.T) {
	err := (&CLI{Network: "tcp", Address: "127.0.0.1:0", MaxRecvMessageSize: 4}).Run()
	if err == nil || !strings.Contains(err.Error(), "no credentials provided") {
		t.Errorf("Run() without --insecure or TLS certificates: want a 'no credentials provided' error, got %v", err)
	}
}
