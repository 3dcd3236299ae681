package kraft_test

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/internal/kfaketest"
	"github.com/kupgrade/kupgrade/kraft"
	"github.com/kupgrade/kupgrade/node"
)

// TestDescribeFeaturesRetriesStaleConnection proves that a broker that
// closes the client's connection (as one that restarted since the client
// last used it does: the next read fails with EOF) is asked once more, on a
// new connection, instead of being reported as not answering.
func TestDescribeFeaturesRetriesStaleConnection(t *testing.T) {
	c, cl := kfaketest.New(t, kfake.NumBrokers(3))
	if _, err := kraft.DescribeFeatures(t.Context(), cl); err != nil { // connections are open now
		t.Fatal(err)
	}
	closed := 0
	c.ControlKey(int16(kmsg.ApiVersions), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if c.CurrentNode() != 1 || closed > 0 {
			return nil, nil, false
		}
		closed++
		return nil, errors.New("restarted"), true // kfake closes the connection
	})
	fs, err := kraft.DescribeFeatures(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if closed != 1 {
		t.Fatalf("the connection to broker 1 was closed %d times, want once", closed)
	}
	f, ok := fs.Node(node.RoleBroker, 1)
	if !ok || f.Err != nil || len(f.Supported) == 0 {
		t.Errorf("broker 1 after a stale connection: %+v, want its features", f)
	}
}
