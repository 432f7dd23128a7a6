package main

import (
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// TestRefusesToServeWithoutTLS checks that the function will not serve
// plaintext unless told to with --insecure.
func TestRefusesToServeWithoutTLS(t *testing.T) {
	err := (&CLI{Network: "tcp", Address: "127.0.0.1:0", MaxRecvMessageSize: 4}).Run()
	if err == nil || !strings.Contains(err.Error(), "no credentials provided") {
		t.Errorf("Run() without --insecure or TLS certificates: want a 'no credentials provided' error, got %v", err)
	}
}

// TestFlags checks the flags are function-template-go's, which Crossplane's
// package runtime and users rely on.
func TestFlags(t *testing.T) {
	var c CLI
	parser, err := kong.New(&c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse([]string{"--insecure", "--debug", "--address=:1234", "--tls-server-certs-dir=/tls", "--max-recv-message-size=8"}); err != nil {
		t.Fatalf("function-template-go's flags: %v", err)
	}
	want := CLI{Debug: true, Network: "tcp", Address: ":1234", TLSCertsDir: "/tls", Insecure: true, MaxRecvMessageSize: 8, MetricsAddress: ":8080", CacheSize: 16384}
	if c != want {
		t.Errorf("parsed %+v, want %+v", c, want)
	}
	t.Setenv("TLS_SERVER_CERTS_DIR", "/from-env")
	c = CLI{}
	parser, _ = kong.New(&c)
	if _, err := parser.Parse(nil); err != nil || c.TLSCertsDir != "/from-env" {
		t.Errorf("TLS_SERVER_CERTS_DIR: got %q, %v", c.TLSCertsDir, err)
	}
}
