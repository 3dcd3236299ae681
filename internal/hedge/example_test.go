package hedge_test

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/internal/hedge"
)

// A hung broker costs a hedged read about hedge.Delay, not the client's
// whole timeout.
func ExampleDo() {
	hung := func(ctx context.Context) (kmsg.Response, int32, error) {
		<-ctx.Done() // a paused broker: never answers
		return nil, 1, ctx.Err()
	}
	healthy := func(context.Context) (kmsg.Response, int32, error) {
		return kmsg.NewPtrMetadataResponse(), 2, nil
	}
	start := time.Now()
	_, id, err := hedge.Do(context.Background(), []hedge.Attempt{hung, healthy})
	fmt.Println("answered by broker", id, err, time.Since(start) < 2*hedge.Delay)
	// Output: answered by broker 2 <nil> true
}
