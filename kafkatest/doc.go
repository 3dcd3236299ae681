// Package kafkatest runs real Apache Kafka clusters as local JVM processes on
// 127.0.0.1, for tests and demos, with no Docker: ZooKeeper mode (one
// ZooKeeper and brokers, Kafka 3.0–3.9) and KRaft mode (dedicated controllers
// and brokers, or combined nodes, Kafka 3.7 and later, 4.x included).
//
// [Resolve] turns a release ("3.9.2") into a runnable [Distribution]: the
// first time, Maven resolves org.apache.kafka:kafka_2.13 and kafka-tools with
// their runtime dependencies and the logging backend of that release line
// into os.UserCacheDir()/kupgrade/kafka/<release>; later runs find it there.
// [EnvKafkaHome] points at unpacked distributions instead.
//
// [Start] is the httptest-like entry point for tests:
//
//	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Combined(3))
//	cl := c.Client(t)
//
// [New] does the same for programs, which Close the [Cluster] themselves. A
// Cluster's nodes can be stopped, started, restarted onto another release or
// with other static config, killed, paused and resumed; it implements
// [node.Orchestrator] and its optional capabilities ([node.Liveness],
// [node.Provisioner]), so kupgrade can upgrade it. [StartTraffic] (or
// [Cluster.Traffic]) writes numbered records and reads them back, and its
// [TrafficReport] says exactly which acknowledged records were lost.
//
// Fault tests have three more tools. [Cluster.WatchISR] starts an
// [ISRWatcher] that samples every partition's ISR through every broker on
// its own connection and reports, in an [ISRReport], each partition a broker
// showed below min.insync.replicas or without a leader. [NewProxy] puts a
// latency-injecting TCP [Proxy] on 127.0.0.1 in front of one address, and
// [Cluster.SlowLink] (built on [DialThrough]) makes a franz-go client reach
// one broker through it. [Cluster.StopZooKeeper], [Cluster.KillZooKeeper]
// and [Cluster.StartZooKeeper] restart a ZooKeeper-mode cluster's ZooKeeper
// under running brokers.
//
// [Secure] makes every listener SASL_SSL: a CA and node certificates made in
// Go at start (PEM, no keystores to build), PLAIN and SCRAM-SHA-512 users,
// an authorizer (StandardAuthorizer in KRaft mode, AclAuthorizer in
// ZooKeeper mode) and super users for the brokers and for kafkatest's own
// clients; [Cluster.Security] hands out the CA, client options per user and
// [Security.Grant] for ACLs.
//
// Only one cluster runs on a machine at a time: clusters of other test
// binaries wait (a file lock in the user cache directory). Every JVM dies
// with the process that started it, also when that process is killed
// (Linux parent-death signal). Real-Kafka tests skip with -short, and when
// Java or Maven is missing they skip with the reason, or fail under CI=true
// ([RequireTools]).
//
// With the option [Containers], the same Cluster runs its nodes (and
// ZooKeeper) in containers through testcontainers-go instead: the official
// apache/kafka images by default ([ContainerImage] picks others), a data
// volume per node, no JDK or Maven needed, a bridge network per cluster with
// the clients' ports published on 127.0.0.1 (or host networking:
// [ContainerHostNetwork]). [LocalContainers] sets up a
// private engine and stand-in images on machines with no engine or
// registry, as kupgrade's CI. The machine-wide lock covers container
// clusters too.
package kafkatest
