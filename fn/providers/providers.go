// Package providers is where the function's clouds are registered: adding a
// cloud is its folder under fn/provider and one line here.
package providers

import (
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider/aws"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider/azure"
	"github.com/fleetnodepool/function-fleetnodepool/fn/provider/sim"
)

// All returns a new instance of every provider the function ships.
func All() []provider.Provider {
	return []provider.Provider{
		aws.New(),
		azure.New(),
		sim.New(),
	}
}
