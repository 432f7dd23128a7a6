package plan

import "github.com/fleetnodepool/function-fleetnodepool/fn/providers"

// withBroken switches rules off: the property test proves it catches each.
func withBroken(r rule) Option { return func(pl *Planner) { pl.broken = r } }

// testPlanner is a Planner with every provider the function ships.
func testPlanner(o ...Option) *Planner {
	return New(append([]Option{WithProviders(providers.All()...)}, o...)...)
}
