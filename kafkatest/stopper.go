package kafkatest

import (
	"context"
	"fmt"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/node"
)

var _ node.Stopper = (*Cluster)(nil)

// StartStopped applies ch (another release and/or static config keys set
// and unset) to a stopped node and starts it, returning once it is ready,
// as [Cluster.Restart] does after its stop. With [Cluster.StopNode] it
// implements [node.Stopper]. A node that is still running is refused.
func (c *Cluster) StartStopped(ctx context.Context, id int32, ch node.Change) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	if err := ch.Validate(); err != nil {
		return err
	}
	if s := n.Status(); s == Running || s == Paused {
		return fmt.Errorf("kafkatest: node %d is %v, not stopped", id, s)
	}
	var dist *Distribution
	if ch.Version != "" {
		major, _, _, err := parseRelease(ch.Version)
		if err != nil {
			return err
		}
		if c.cfg.mode == compat.ModeZooKeeper && major >= 4 {
			return fmt.Errorf("kafkatest: node %d cannot run Kafka %s: ZooKeeper mode ends with 3.9 (migrate to KRaft first)", id, ch.Version)
		}
		if dist, err = c.distribution(ctx, ch.Version); err != nil {
			return err
		}
	}
	n.apply(dist, ch)
	c.saveState()
	if err := c.beforeStart(ctx, n); err != nil {
		return err
	}
	if err := n.start(); err != nil {
		return err
	}
	return c.waitReady(ctx, n)
}
