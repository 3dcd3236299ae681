package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Bounds of CreateTopic: the timeout the CreateTopics request gives the
// brokers, and how long the topic may take to reach every running broker.
const (
	createTimeout     = time.Minute
	topicReadyTimeout = 3 * time.Minute
)

// CreateTopic creates a topic and waits until every partition has a leader
// and a full ISR. configs are topic configs such as
// "min.insync.replicas": "2".
func (c *Cluster) CreateTopic(ctx context.Context, name string, partitions int32, rf int16, configs map[string]string) error {
	cl, err := c.NewClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	var cfg map[string]*string
	if len(configs) > 0 {
		cfg = map[string]*string{}
		for k, v := range configs {
			cfg[k] = kadm.StringPtr(v)
		}
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(createTimeout / time.Millisecond))
	resp, err := adm.CreateTopic(ctx, partitions, rf, cfg, name)
	if err == nil {
		err = resp.Err
	}
	// A ZooKeeper-mode broker answers only once its metadata has a leader for
	// every new partition, and answers REQUEST_TIMED_OUT when that takes
	// longer than the request's timeout (many partitions on a busy machine):
	// the topic is created all the same, so wait for it below.
	if err != nil && !errors.Is(err, kerr.RequestTimedOut) {
		return fmt.Errorf("kafkatest: create topic %s: %w", name, err)
	}
	// Wait until every running broker serves the topic with leaders and full
	// ISRs: metadata reaches brokers at slightly different times.
	wctx, cancel := context.WithTimeoutCause(ctx, topicReadyTimeout, fmt.Errorf("kafkatest: topic %s: not on every broker with leaders and full ISR after %v", name, topicReadyTimeout))
	defer cancel()
	for _, n := range c.Brokers() {
		if st := n.Status(); st != Running {
			continue
		}
		err := poll(wctx, nil, func(ctx context.Context) error {
			return topicReadyOn(ctx, n.Addr(), name, partitions, c.clientSecurity()...)
		})
		if err != nil {
			return fmt.Errorf("kafkatest: broker %d: %w", n.ID(), err)
		}
	}
	return nil
}

func topicReadyOn(ctx context.Context, addr, name string, partitions int32, opts ...kgo.Opt) error {
	cl, err := oneShotClient(addr, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(name)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != int(partitions) {
		return fmt.Errorf("topic %s not fully in metadata yet", name)
	}
	for _, p := range resp.Topics[0].Partitions {
		if p.Leader < 0 || len(p.ISR) != len(p.Replicas) {
			return fmt.Errorf("partition %s-%d: leader %d, ISR %v of replicas %v", name, p.Partition, p.Leader, p.ISR, p.Replicas)
		}
	}
	return nil
}
