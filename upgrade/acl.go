package upgrade

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// An Operation is something kupgrade does to a cluster that needs its own
// permissions: [ACLs] says which.
type Operation string

// The operations whose ACLs [ACLs] lists.
const (
	// OpInspect is [Inspect]: brokers and controllers, their API versions,
	// static pins and finalized features.
	OpInspect Operation = "inspect"
	// OpRollingUpgrade is a [Runner] running restart steps (a rolling
	// upgrade, a rollback): inspect, the health gates over every topic's
	// partitions and min.insync.replicas, the controller quorum, and the
	// preferred leader elections after each restart.
	OpRollingUpgrade Operation = "rolling upgrade"
	// OpFinalize is a finalize step (UpdateFeatures: metadata.version and
	// the other KRaft features).
	OpFinalize Operation = "finalize"
	// OpReplace is a replace plan ([NewReplacePlan]): partition moves with
	// replication throttles, which the executor sets and restores, and the
	// retired brokers' unregistration.
	OpReplace Operation = "replace"
)

// The cluster resource's name in ACLs.
const clusterName = "kafka-cluster"

// An ACL is one permission kupgrade needs: ALLOW Operation on a resource
// (Name literal, or "*" for every resource of the type), from any host, for
// the principal kupgrade's client authenticates as. Why names the requests
// that need it.
type ACL struct {
	Resource  kmsg.ACLResourceType        `json:"resource"`
	Name      string                      `json:"name"`
	Pattern   kmsg.ACLResourcePatternType `json:"pattern"`
	Operation kmsg.ACLOperation           `json:"operation"`
	Why       string                      `json:"why"`
}

// String reads "ALLOW DESCRIBE on CLUSTER kafka-cluster (DescribeQuorum …)".
func (a ACL) String() string {
	return fmt.Sprintf("ALLOW %v on %v %s (%s)", a.Operation, a.Resource, a.Name, a.Why)
}

func clusterACL(op kmsg.ACLOperation, why string) ACL {
	return ACL{Resource: kmsg.ACLResourceTypeCluster, Name: clusterName, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Why: why}
}

func topicACL(name string, op kmsg.ACLOperation, why string) ACL {
	return ACL{Resource: kmsg.ACLResourceTypeTopic, Name: name, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Why: why}
}

// aclTable is what each operation asks of Kafka. The topic ACLs are on
// every topic ("*") because a health gate must see every partition: Kafka
// leaves topics a principal may not DESCRIBE out of Metadata without an
// error, and a gate that cannot see a partition cannot protect it.
var aclTable = map[Operation][]ACL{
	OpInspect: {
		clusterACL(kmsg.ACLOperationDescribe, "DescribeQuorum through the brokers and the controllers"),
		clusterACL(kmsg.ACLOperationDescribeConfigs, "DescribeConfigs of the brokers: inter.broker.protocol.version and other pins"),
	},
	OpRollingUpgrade: {
		clusterACL(kmsg.ACLOperationDescribe, "DescribeQuorum: the quorum gate and controller catch-up"),
		clusterACL(kmsg.ACLOperationDescribeConfigs, "DescribeConfigs of the brokers and controllers: pins and fetch timeouts"),
		clusterACL(kmsg.ACLOperationAlter, "ElectLeaders: preferred leaders back after each restart; with AlterPartitionReassignments, in ZooKeeper mode, leadership off a leader that does not take a restarted broker back"),
		topicACL("*", kmsg.ACLOperationDescribe, "Metadata of every topic: the gates' partitions, leaders and ISRs"),
		topicACL("*", kmsg.ACLOperationDescribeConfigs, "DescribeConfigs of every topic: min.insync.replicas"),
	},
	OpFinalize: {
		clusterACL(kmsg.ACLOperationDescribe, "DescribeQuorum: every controller's supported levels"),
		clusterACL(kmsg.ACLOperationAlter, "UpdateFeatures: metadata.version and the other features"),
	},
	OpReplace: {
		clusterACL(kmsg.ACLOperationDescribe, "ListPartitionReassignments, DescribeLogDirs"),
		clusterACL(kmsg.ACLOperationAlter, "AlterPartitionReassignments, UnregisterBroker"),
		clusterACL(kmsg.ACLOperationDescribeConfigs, "DescribeConfigs of the brokers: throttles to restore"),
		clusterACL(kmsg.ACLOperationAlterConfigs, "IncrementalAlterConfigs of the brokers: replication throttle rates"),
		topicACL("*", kmsg.ACLOperationDescribe, "Metadata of every topic: the partitions to move"),
		topicACL("*", kmsg.ACLOperationDescribeConfigs, "DescribeConfigs of the topics: throttled replicas to restore"),
		topicACL("*", kmsg.ACLOperationAlterConfigs, "IncrementalAlterConfigs of the topics: throttled replicas"),
	},
}

// ACLs returns the exact ACLs kupgrade needs for the operations, each once
// (the first reason kept), sorted: cluster before topics, then by
// operation. Grant them to the principal kupgrade's client authenticates
// as, for example with [ACLBuilders]. A [CanaryGate] needs [CanaryACLs] as
// well. An unknown operation adds nothing; ask for every one you run.
func ACLs(ops ...Operation) []ACL {
	var out []ACL
	for _, op := range ops {
		for _, a := range aclTable[op] {
			if !slices.ContainsFunc(out, func(b ACL) bool { return b.same(a) }) {
				out = append(out, a)
			}
		}
	}
	slices.SortFunc(out, func(a, b ACL) int {
		return cmp.Or(cmp.Compare(b.Resource, a.Resource), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Operation, b.Operation))
	})
	return out
}

// CanaryACLs returns the ACLs of a [health.Canary] on topic: it creates the
// topic (and partitions, so that every broker leads one), writes a record
// to each partition and reads it back.
func CanaryACLs(topic string) []ACL {
	return []ACL{
		topicACL(topic, kmsg.ACLOperationRead, "Fetch: the canary reads its record back"),
		topicACL(topic, kmsg.ACLOperationWrite, "Produce: the canary's record"),
		topicACL(topic, kmsg.ACLOperationCreate, "CreateTopics: the canary topic"),
		topicACL(topic, kmsg.ACLOperationDescribe, "Metadata of the canary topic"),
		topicACL(topic, kmsg.ACLOperationAlter, "CreatePartitions: a partition led by each broker"),
		topicACL(topic, kmsg.ACLOperationDescribeConfigs, "DescribeConfigs of the canary topic"),
	}
}

func (a ACL) same(b ACL) bool {
	return a.Resource == b.Resource && a.Name == b.Name && a.Pattern == b.Pattern && a.Operation == b.Operation
}

// ACLBuilders returns acls as franz-go ACL builders allowing principal
// ("User:kupgrade") from any host, one builder per resource and pattern, for
// [kadm.Client.CreateACLs].
func ACLBuilders(principal string, acls []ACL) []*kadm.ACLBuilder {
	type key struct {
		res     kmsg.ACLResourceType
		name    string
		pattern kmsg.ACLResourcePatternType
	}
	ops := map[key][]kadm.ACLOperation{}
	var order []key
	for _, a := range acls {
		k := key{a.Resource, a.Name, a.Pattern}
		if _, ok := ops[k]; !ok {
			order = append(order, k)
		}
		ops[k] = append(ops[k], a.Operation)
	}
	var out []*kadm.ACLBuilder
	for _, k := range order {
		b := kadm.NewACLs().Allow(principal).AllowHosts("*").Operations(ops[k]...).ResourcePatternType(k.pattern)
		switch k.res {
		case kmsg.ACLResourceTypeCluster:
			b = b.Clusters()
		case kmsg.ACLResourceTypeTopic:
			b = b.Topics(k.name)
		case kmsg.ACLResourceTypeGroup:
			b = b.Groups(k.name)
		default:
			continue
		}
		out = append(out, b)
	}
	return out
}
