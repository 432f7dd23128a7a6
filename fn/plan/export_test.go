package plan

// withBroken switches rules off: the property test proves it catches each.
func withBroken(r rule) Option { return func(pl *Planner) { pl.broken = r } }
