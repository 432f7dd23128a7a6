// Command server serves the no-op baseline function, insecure and without
// metrics, for the gRPC benchmarks.
package main

import (
	"flag"
	"log"

	"github.com/crossplane/function-sdk-go"

	"github.com/fleetnodepool/function-fleetnodepool/test/benchmarks/noop"
)

func main() {
	addr := flag.String("address", ":9443", "address to listen on")
	flag.Parse()
	if err := function.Serve(&noop.Function{}, function.Listen("tcp", *addr), function.Insecure(true), function.WithMetricsServer("")); err != nil {
		log.Fatal(err)
	}
}
