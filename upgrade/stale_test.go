package upgrade

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/internal/kfaketest"
)

// TestApiVersionsRetriesStaleConnection proves that Inspect's ApiVersions
// round asks once more a broker whose connection turned out stale (EOF, as
// after the broker restarted), instead of reporting that it did not answer.
func TestApiVersionsRetriesStaleConnection(t *testing.T) {
	c, cl := kfaketest.New(t, kfake.NumBrokers(3))
	adm := kadm.NewClient(cl)
	if _, err := adm.ApiVersions(t.Context()); err != nil { // connections are open now
		t.Fatal(err)
	}
	closed := 0
	c.ControlKey(int16(kmsg.ApiVersions), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if c.CurrentNode() != 2 || closed > 0 {
			return nil, nil, false
		}
		closed++
		return nil, errors.New("restarted"), true // kfake closes the connection
	})
	vs, err := apiVersions(t.Context(), adm)
	if err != nil {
		t.Fatal(err)
	}
	if closed != 1 {
		t.Fatalf("the connection to broker 2 was closed %d times, want once", closed)
	}
	for id, v := range vs {
		if v.Err != nil {
			t.Errorf("broker %d: %v", id, v.Err)
		}
	}
	if len(vs) != 3 {
		t.Errorf("%d brokers answered, want 3", len(vs))
	}
}
