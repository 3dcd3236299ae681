package shellnode_test

import (
	"context"
	"fmt"

	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/node/shellnode"
)

func Example() {
	// In production: `ssh {{.Host}} sudo /usr/local/bin/kafka-switch {{quote .Release}} && ssh {{.Host}} sudo systemctl restart kafka`.
	orch, err := shellnode.NewShell(shellnode.Commands{
		Restart: `echo restarting node {{.ID}} on {{.Host}} with release {{.Release}}, config {{json .Config}}`,
		Alive:   `true`,
	}, shellnode.StaticNodes(node.Node{ID: 1, Host: "kafka-1", Port: 9092, Roles: []node.Role{node.RoleBroker}}))
	if err != nil {
		fmt.Println(err)
		return
	}
	// orch goes to upgrade.NewRunner; here we call it ourselves.
	err = orch.Restart(context.Background(), 1, node.Change{Version: "4.1.2", Set: map[string]string{"inter.broker.protocol.version": "3.9"}})
	fmt.Println("restart:", err)
	_, live := orch.(node.Liveness)
	fmt.Println("liveness:", live)
	// Output:
	// restart: <nil>
	// liveness: true
}
