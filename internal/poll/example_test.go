package poll_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kupgrade/kupgrade/internal/poll"
)

// A condition that holds at the third check; the pauses grow from Initial.
func ExampleWait() {
	checks := 0
	err := poll.Wait(context.Background(), func(context.Context) error {
		checks++
		if checks < 3 {
			return errors.New("not yet")
		}
		return nil
	}, poll.Policy{Initial: time.Millisecond, Timeout: time.Minute})
	fmt.Println(checks, err)
	// Output: 3 <nil>
}

// A condition that never holds: Until gives up with the context's cause.
func ExampleUntil() {
	ctx, cancel := context.WithTimeoutCause(context.Background(), 20*time.Millisecond, errors.New("brokers never agreed"))
	defer cancel()
	err := poll.Every(ctx, 5*time.Millisecond, func(context.Context) bool { return false })
	fmt.Println(err)
	// Output: brokers never agreed
}
