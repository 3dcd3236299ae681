// Command localcluster starts a real local Kafka cluster with kafkatest,
// creates a topic, writes a few records, and prints the cluster's brokers,
// their releases (as each node's ApiVersions reveal them) and its topics.
//
//	go run ./examples/localcluster                   # KRaft 3.9.2: 3 controllers + 3 brokers
//	go run ./examples/localcluster -mode zookeeper -release 3.6.2
//	go run ./examples/localcluster -hold             # keep it running until Ctrl-C
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/kafkatest"
)

func main() {
	mode := flag.String("mode", "kraft", "cluster mode: kraft or zookeeper")
	release := flag.String("release", "3.9.2", "Kafka release to run")
	combined := flag.Bool("combined", false, "KRaft: 3 combined nodes instead of 3 controllers + 3 brokers")
	hold := flag.Bool("hold", false, "keep the cluster running until interrupted")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	opts := []kafkatest.Option{kafkatest.KRaft(*release)}
	switch {
	case *mode == "zookeeper":
		opts = []kafkatest.Option{kafkatest.ZooKeeper(*release)}
	case *mode != "kraft":
		log.Fatalf("unknown -mode %q: want kraft or zookeeper", *mode)
	case *combined:
		opts = append(opts, kafkatest.Combined(3))
	}
	start := time.Now()
	c, err := kafkatest.New(ctx, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Printf("%s cluster %s ready in %v (data in %s)\n\n", c.Mode(), c.Name(), time.Since(start).Round(time.Millisecond), c.Dir())

	if err := c.CreateTopic(ctx, "greetings", 3, 3, map[string]string{"min.insync.replicas": "2"}); err != nil {
		log.Fatal(err)
	}
	cl, err := c.NewClient(kgo.DefaultProduceTopic("greetings"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	for i := range 3 {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("hello %d", i))).FirstErr(); err != nil {
			log.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		log.Fatal(err)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tROLES\tADDRESS\tRELEASE\tAPIVERSIONS SAYS\tSTATUS")
	for _, n := range c.All() {
		guess := "-"
		if v, ok := versions[n.ID()]; ok && v.Err == nil {
			guess = v.VersionGuess()
		}
		fmt.Fprintf(w, "%d\t%v\t%s\t%s\t%s\t%v\n", n.ID(), n.Roles(), n.Addr(), n.Release(), guess, n.Status())
	}
	w.Flush()

	topics, err := adm.ListTopics(ctx)
	if err != nil {
		log.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics.Names()...)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println()
	w = tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOPIC\tPARTITIONS\tREPLICATION\tRECORDS")
	for _, t := range topics.Sorted() {
		var records int64
		ends.Each(func(o kadm.ListedOffset) {
			if o.Topic == t.Topic {
				records += o.Offset
			}
		})
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", t.Topic, len(t.Partitions), t.Partitions.NumReplicas(), records)
	}
	w.Flush()

	if *hold {
		fmt.Printf("\nbrokers: %v — press Ctrl-C to stop\n", c.Addrs())
		<-ctx.Done()
	}
}
