// Command resolve makes Kafka releases ready to run for kafkatest: it
// resolves each release's jars with Maven into the cache (see
// kafkatest.Resolve) and prints where they are and how long it took. Run it
// once to warm the cache before tests, for example:
//
//	go run ./examples/resolve 3.6.2 3.9.2 4.1.2
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/kupgrade/kupgrade/kafkatest"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: resolve release...\n\nResolves Kafka releases (e.g. 3.9.2) for kafkatest and prints their directories.\n")
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	failed := false
	for _, rel := range flag.Args() {
		start := time.Now()
		d, err := kafkatest.Resolve(ctx, rel)
		if err != nil {
			fmt.Fprintf(os.Stderr, "resolve %s: %v\n", rel, err)
			failed = true
			continue
		}
		fmt.Printf("%s\t%s\t%s\n", d.Release, d.Dir, time.Since(start).Round(time.Millisecond))
	}
	if failed {
		os.Exit(1)
	}
}
