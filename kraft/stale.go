package kraft

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/internal/hedge"
)

// askRead is [ask] for reads, which are safe to send twice: if the node
// closed the connection the client had (it restarted since the client last
// used it, so the first read after a restart fails with EOF), it asks once
// more, on the new connection franz-go opens.
func askRead(ctx context.Context, cfg config, ep endpoint, req kmsg.Request) (kmsg.Response, error) {
	resp, err := ask(ctx, cfg, ep, req)
	if hedge.StaleConn(err) && ctx.Err() == nil {
		return ask(ctx, cfg, ep, req)
	}
	return resp, err
}
