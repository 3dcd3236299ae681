package upgrade

import (
	"context"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kupgrade/kupgrade/internal/hedge"
)

// apiVersions asks every broker for its API versions, as kadm does, and asks
// once more those whose connection turned out stale: the first request to a
// node after it restarted fails with EOF on the connection the client still
// had, and the next goes over a new one.
func apiVersions(ctx context.Context, adm *kadm.Client) (kadm.BrokersApiVersions, error) {
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		return vs, err
	}
	stale := false
	for _, v := range vs {
		stale = stale || hedge.StaleConn(v.Err)
	}
	if !stale || ctx.Err() != nil {
		return vs, nil
	}
	again, err := adm.ApiVersions(ctx)
	if err != nil {
		return vs, nil // the first answers stand
	}
	for id, v := range vs {
		if a, ok := again[id]; ok && hedge.StaleConn(v.Err) {
			vs[id] = a
		}
	}
	return vs, nil
}
