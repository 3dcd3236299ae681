package upgrade

import (
	"context"
	"fmt"
	"time"
)

// Reseal gives a plan edited by a test the ID of its new content, as
// NewPlan would have: tests that need a step no planner makes (a restart
// with a config Kafka refuses) use it, while Run still refuses plans edited
// without it.
func Reseal(p *Plan) { p.ID = planID(*p) }

// ZooKeeperGet reads znode path (below connect's chroot) from the first
// server of a zookeeper.connect string, for tests that look at what a
// migration left in ZooKeeper.
func ZooKeeperGet(ctx context.Context, connect, path string) ([]byte, error) {
	servers := zkServers(connect)
	if len(servers) == 0 {
		return nil, fmt.Errorf("zookeeper.connect %q names no server", connect)
	}
	return zkGetData(ctx, servers[0], zkChroot(connect)+path, 5*time.Second)
}

// StallAfter sets how long a ZooKeeper-mode leader may keep a restarted
// broker out of its ISRs before the Runner moves its leadership (default 1m).
func StallAfter(d time.Duration) RunnerOption {
	return optionFunc(func(c *config) { c.stallAfter = d })
}
