package node_test

import (
	"context"
	"fmt"

	"github.com/kupgrade/kupgrade/node"
)

// fixed is an Orchestrator over nodes it only pretends to restart, enough to
// show the shape of one: a real one edits server.properties, switches the
// binary and restarts the service.
type fixed struct{ nodes []node.Node }

var (
	_ node.Orchestrator = (*fixed)(nil)
	_ node.Liveness     = (*fixed)(nil)
)

func (f *fixed) Nodes(context.Context) ([]node.Node, error) { return f.nodes, nil }

func (f *fixed) Restart(ctx context.Context, id int32, ch node.Change) error {
	if err := ch.Validate(); err != nil {
		return err
	}
	for i := range f.nodes {
		if f.nodes[i].ID == id {
			if ch.Version != "" {
				f.nodes[i].Version = ch.Version
			}
			fmt.Printf("restart node %d (%v): %v\n", id, f.nodes[i].Roles, ch)
			return nil
		}
	}
	return fmt.Errorf("no node %d", id)
}

func (f *fixed) Alive(context.Context, int32) (bool, error) { return true, nil }

func Example() {
	var orch node.Orchestrator = &fixed{nodes: []node.Node{
		{ID: 1, Roles: []node.Role{node.RoleController, node.RoleBroker}, Host: "kafka-1", Port: 9092, Version: "3.9.2"},
	}}
	ctx := context.Background()
	_ = orch.Restart(ctx, 1, node.Change{Version: "4.1.2", Unset: []string{"inter.broker.protocol.version"}})
	if _, ok := orch.(node.Liveness); ok { // how the Runner finds an optional capability
		fmt.Println("the Runner will ask it whether a node's process is alive")
	}
	nodes, _ := orch.Nodes(ctx)
	fmt.Println(nodes[0].Version)
	// Output:
	// restart node 1 ([controller broker]): version=4.1.2 unset[inter.broker.protocol.version]
	// the Runner will ask it whether a node's process is alive
	// 4.1.2
}
