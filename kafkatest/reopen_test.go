package kafkatest_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/node"
)

// TestReopen upgrades one node, ends every process at once as a killed
// program would, and starts the cluster again from its directory: the node
// runs the release it was on, and the data is still there.
func TestReopen(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Combined(1)) // in t.TempDir(), which Close keeps
	if err := c.CreateTopic(t.Context(), "kept", 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(t.Context(), 1, node.Change{Version: "4.1.2"}); err != nil {
		t.Fatal(err)
	}
	cl := c.Client(t, kgo.DefaultProduceTopic("kept"))
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	dir := c.Dir()
	c.Close() // SIGKILL to every process; a given Dir is kept

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	r, err := kafkatest.Reopen(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if r.Name() != c.Name() || r.Dir() != dir {
		t.Errorf("reopened %s in %s, want %s in %s", r.Name(), r.Dir(), c.Name(), dir)
	}
	if got := r.Node(1).Release(); got != "4.1.2" {
		t.Errorf("node 1 runs %s after Reopen, want 4.1.2, the release it was restarted with", got)
	}
	rc := r.Client(t, kgo.ConsumeTopics("kept"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fctx, fcancel := context.WithTimeout(ctx, time.Minute)
	defer fcancel()
	for {
		fs := rc.PollFetches(fctx)
		if err := fctx.Err(); err != nil {
			t.Fatalf("record produced before the kill not read back within 1m of Reopen: %v (last fetch errors %v)", err, fs.Errors())
		}
		if recs := fs.Records(); len(recs) > 0 {
			if string(recs[0].Value) != "before" {
				t.Errorf("read back %q, want the record produced before the kill", recs[0].Value)
			}
			return
		}
	}
}
