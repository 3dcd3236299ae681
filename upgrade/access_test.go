package upgrade

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/kraft"
)

func TestAccessError(t *testing.T) {
	type want struct {
		unauthenticated bool
		denied          bool
		op              kmsg.ACLOperation
		res             kmsg.ACLResourceType
		name            string
	}
	tests := []struct {
		name string
		err  error
		want *want // nil: not an access error
	}{
		{"nil", nil, nil},
		{"unrelated", errors.New("connection refused"), nil},
		{"a retriable Kafka error", fmt.Errorf("metadata: %w", kerr.NotController), nil},
		{"wrong password", fmt.Errorf("metadata: %w", kerr.SaslAuthenticationFailed), &want{unauthenticated: true}},
		{"mechanism not enabled", kerr.UnsupportedSaslMechanism, &want{unauthenticated: true}},
		{"untrusted certificate", fmt.Errorf("dial: %w", x509.UnknownAuthorityError{}), &want{unauthenticated: true}},
		{"cluster refused", fmt.Errorf("kraft: describe quorum: %w", kerr.ClusterAuthorizationFailed),
			&want{denied: true, op: kmsg.ACLOperationUnknown, res: kmsg.ACLResourceTypeCluster, name: "kafka-cluster"}},
		{"topic refused", kerr.TopicAuthorizationFailed, &want{denied: true, res: kmsg.ACLResourceTypeTopic}},
		{"finalize refused", &kraft.UpdateError{Feature: "metadata.version", Kind: kraft.ErrNotAuthorized, Kafka: kerr.ClusterAuthorizationFailed},
			&want{denied: true, op: kmsg.ACLOperationAlter, res: kmsg.ACLResourceTypeCluster, name: "kafka-cluster"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := accessError("gate", tt.err)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("accessError(%v) = %v, want nil", tt.err, got)
				}
				return
			}
			if got == nil {
				t.Fatalf("accessError(%v) = nil", tt.err)
			}
			if errors.Is(got, ErrUnauthenticated) != tt.want.unauthenticated || errors.Is(got, ErrDenied) != tt.want.denied {
				t.Errorf("accessError(%v) = %v: Is(ErrUnauthenticated) %v, Is(ErrDenied) %v; want %v, %v", tt.err, got,
					errors.Is(got, ErrUnauthenticated), errors.Is(got, ErrDenied), tt.want.unauthenticated, tt.want.denied)
			}
			if errors.Is(got, ErrUnreachable) {
				t.Errorf("accessError(%v) is ErrUnreachable", tt.err)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("accessError(%v) = %v does not wrap the cause", tt.err, got)
			}
			if tt.want.denied {
				de, ok := errors.AsType[*DeniedError](got)
				if !ok {
					t.Fatalf("accessError(%v) = %T, want *DeniedError", tt.err, got)
				}
				if diff := cmp.Diff([]any{tt.want.op, tt.want.res, tt.want.name}, []any{de.Operation, de.Resource, de.Name}); diff != "" {
					t.Errorf("DeniedError operation, resource, name (-want +got):\n%s", diff)
				}
			}
			if again := accessError("other", got); again != got {
				t.Errorf("accessError of its own result wrapped it again: %v", again)
			}
		})
	}
}

func TestDeniedIn(t *testing.T) {
	snap := health.Snapshot{Topics: []health.Topic{
		{Name: "a", MinISR: 2},
		{Name: "b", MinISRError: "no answer"},
		{Name: "c", MinISRError: kerr.TopicAuthorizationFailed.Error() + ": Authorization failed."},
	}}
	err := deniedIn("health snapshot", snap)
	de, ok := errors.AsType[*DeniedError](err)
	if !ok {
		t.Fatalf("deniedIn = %v, want a *DeniedError for topic c", err)
	}
	if de.Operation != kmsg.ACLOperationDescribeConfigs || de.Resource != kmsg.ACLResourceTypeTopic || de.Name != "c" {
		t.Errorf("deniedIn names %v on %v %q, want DESCRIBE_CONFIGS on TOPIC c", de.Operation, de.Resource, de.Name)
	}
	want := "upgrade: health snapshot: denied: the client's principal needs ALLOW DESCRIBE_CONFIGS on TOPIC c (TOPIC_AUTHORIZATION_FAILED: Not authorized to access topics: [Topic authorization failed.]); grant upgrade.ACLs of the operation"
	if err.Error() != want {
		t.Errorf("message:\n%s\nwant:\n%s", err, want)
	}
	if !errors.Is(err, ErrDenied) || !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("%v does not unwrap to ErrDenied and TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := deniedIn("x", health.Snapshot{Topics: snap.Topics[:2]}); err != nil {
		t.Errorf("deniedIn without a refusal = %v", err)
	}
	if err := deniedIn("x", health.Snapshot{Topics: []health.Topic{{Name: "d", ErrorCode: kerr.TopicAuthorizationFailed.Code}}}); err == nil {
		t.Error("a topic whose metadata Kafka refused is not reported")
	}
}

// deniedOps is a fake cluster whose snapshots or feature updates Kafka
// refuses.
type deniedOps struct {
	*fakeCluster
	snapErr, updateErr error
}

func (d *deniedOps) snapshot(ctx context.Context) (health.Snapshot, error) {
	if d.snapErr != nil {
		return health.Snapshot{}, d.snapErr
	}
	return d.fakeCluster.snapshot(ctx)
}

func (d *deniedOps) updateFeatures(ctx context.Context, levels compat.FeatureLevels, downgrade bool) error {
	if d.updateErr != nil {
		return d.updateErr
	}
	return d.fakeCluster.updateFeatures(ctx, levels, downgrade)
}

// TestRunStopsAtOnceOnAccessErrors: a refused password or ACL ends Run at
// once with the typed error (in a synctest bubble, a gate that waited for
// its timeout would show as ten minutes), and no node is restarted after
// the refusal.
func TestRunStopsAtOnceOnAccessErrors(t *testing.T) {
	for _, tc := range []struct {
		name               string
		snapErr, updateErr error
		is                 error
		restarts           int
	}{
		{"wrong password at the first gate", fmt.Errorf("health: snapshot: metadata: %w", kerr.SaslAuthenticationFailed), nil, ErrUnauthenticated, 0},
		{"no ALTER on the cluster at finalize", nil, &kraft.UpdateError{Feature: "metadata.version", Kind: kraft.ErrNotAuthorized, Kafka: kerr.ClusterAuthorizationFailed}, ErrDenied, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeCluster(compat.ModeKRaft, "3.9.2", 3, 3)
				f.levels["metadata.version"] = 21
				f.leader = 1
				plan := kraftPlan(t, f, "4.1.2")
				ops := &deniedOps{fakeCluster: f, snapErr: tc.snapErr, updateErr: tc.updateErr}
				start := time.Now()
				err := mustRunner(t, nil, f, withOps(ops), PassHolds(), GateTimeout(10*time.Minute)).Run(t.Context(), plan)
				took := time.Since(start)
				if !errors.Is(err, tc.is) || errors.Is(err, ErrUnreachable) {
					t.Fatalf("Run = %v, want %v", err, tc.is)
				}
				if took > time.Minute {
					t.Errorf("Run took %v (fake clock): it waited instead of stopping", took)
				}
				if n := len(f.restarts); n != tc.restarts {
					t.Errorf("%d restarts, want %d", n, tc.restarts)
				}
				if tc.is == ErrDenied {
					de, _ := errors.AsType[*DeniedError](err)
					if de == nil || de.Operation != kmsg.ACLOperationAlter || de.Resource != kmsg.ACLResourceTypeCluster {
						t.Errorf("DeniedError %+v, want ALTER on CLUSTER", de)
					}
				}
			})
		})
	}
}
