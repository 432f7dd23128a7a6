// Command function-fleetnodepool is a Crossplane composition function that
// turns a provider-neutral FleetNodePool into Cluster API node pool objects.
package main

import (
	// Maintenance windows name IANA time zones: the function carries the
	// zone database rather than trust the image to.
	"time"
	_ "time/tzdata"

	"github.com/alecthomas/kong"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/crossplane/function-sdk-go"

	"github.com/fleetnodepool/function-fleetnodepool/fn/compose"
	"github.com/fleetnodepool/function-fleetnodepool/fn/plan"
	"github.com/fleetnodepool/function-fleetnodepool/fn/providers"
)

// CLI of this Function. The flags match function-template-go's, so the
// function runs under Crossplane's package runtime unchanged.
type CLI struct {
	Debug bool `help:"Emit debug logs in addition to info logs." short:"d"`

	Network            string `default:"tcp"  help:"Network on which to listen for gRPC connections."`
	Address            string `default:":9443" help:"Address at which to listen for gRPC connections."`
	TLSCertsDir        string `env:"TLS_SERVER_CERTS_DIR" help:"Directory containing server certs (tls.key, tls.crt) and the CA used to verify client certificates (ca.crt)" name:"tls-server-certs-dir"`
	Insecure           bool   `help:"Run without mTLS credentials. If you supply this flag --tls-server-certs-dir will be ignored."`
	MaxRecvMessageSize int    `default:"4" help:"Maximum size of received messages in MB."`
	MetricsAddress     string `default:":8080" help:"Address of the Prometheus metrics server (/metrics). Empty disables it."`
	CacheSize          int    `default:"16384" help:"How many pools to remember the plan of, so unchanged pools are answered without re-planning (about 19 KB each). Size it to the pools one replica serves. 0 disables the cache."`
	// FixedTime stops the clock: render's golden files must not depend on
	// when they are rendered.
	FixedTime time.Time `help:"Plan every request as if at this instant (RFC3339), for reproducible renders. Never set in production." hidden:""`
}

// Run this Function.
func (c *CLI) Run() error {
	log, err := function.NewLogger(c.Debug)
	if err != nil {
		return err
	}

	// The function's own metrics (the plan cache, plan durations, Fatal
	// results, refused changes and events: package compose) are served with
	// the SDK's gRPC server metrics, on --metrics-address.
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := []compose.Option{compose.WithLogger(log), compose.WithCacheSize(c.CacheSize), compose.WithMetrics(metrics),
		compose.WithPlanner(plan.New(plan.WithProviders(providers.All()...)))}
	if !c.FixedTime.IsZero() {
		opts = append(opts, compose.WithClock(func() time.Time { return c.FixedTime }))
	}
	return function.Serve(compose.New(opts...),
		function.WithMetricsRegistry(metrics),
		function.Listen(c.Network, c.Address),
		function.MTLSCertificates(c.TLSCertsDir),
		function.Insecure(c.Insecure),
		function.MaxRecvMessageSize(c.MaxRecvMessageSize*1024*1024),
		function.WithMetricsServer(c.MetricsAddress))
}

func main() {
	ctx := kong.Parse(&CLI{}, kong.Description("A Crossplane composition function that composes Cluster API node pools from a FleetNodePool."))
	ctx.FatalIfErrorf(ctx.Run())
}
