package kraft_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/internal/kfaketest"
	"github.com/kupgrade/kupgrade/kraft"
	"github.com/kupgrade/kupgrade/node"
)

// TestFakeCluster runs the I/O shell against kfake, in-process, so that
// -short covers it too: kfake serves ApiVersions (v5, with features),
// DescribeCluster and UpdateFeatures, but not DescribeQuorum, so its
// brokers stand in for controllers through ControllerAddrs.
func TestFakeCluster(t *testing.T) {
	c, cl := kfaketest.New(t, kfake.NumBrokers(2))
	ctx := t.Context()

	// Without DescribeQuorum there is no way to find controllers: an entry
	// says so, it is not left out.
	fs, err := kraft.DescribeFeatures(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := fs.Node(node.RoleController, -1); !ok || f.Err == nil || !strings.Contains(f.Err.Error(), "cannot find the controllers") {
		t.Errorf("want one controller entry explaining why none was asked, got:\n%v", fs)
	}
	if _, err := kraft.DescribeQuorum(ctx, cl); err == nil {
		t.Error("DescribeQuorum against kfake (which lacks it) did not fail")
	}

	withAddrs := kraft.ControllerAddrs(c.ListenAddrs()...)
	fs, err = kraft.DescribeFeatures(ctx, cl, withAddrs)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.FirstErr(); err != nil || len(fs) != 4 {
		t.Fatalf("%d entries, first error %v:\n%v", len(fs), err, fs)
	}
	for _, f := range fs {
		if f.ID < 0 || f.APIVersion < 4 || f.Supported["share.version"] != (compat.LevelRange{Min: 0, Max: 2}) {
			t.Errorf("%v: v%d supported %v; want an id found with DescribeCluster and share.version 0-2", f.NodeRef, f.APIVersion, f.Supported)
		}
	}

	// The request Finalize builds for a dry-run safe downgrade, and Kafka
	// 4.x's single answer for the whole request.
	var sent *kmsg.UpdateFeaturesRequest
	c.ControlKey(int16(kmsg.UpdateFeatures), func(r kmsg.Request) (kmsg.Response, error, bool) {
		sent = r.(*kmsg.UpdateFeaturesRequest)
		resp := sent.ResponseKind().(*kmsg.UpdateFeaturesResponse)
		resp.ErrorCode = kerr.InvalidUpdateVersion.Code
		msg := "The update failed for all features since the following feature had an error: Invalid update version 1 for feature share.version. broker 2 does not support this feature."
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
	down := []kraft.FeatureUpdate{{Feature: "share.version", Level: 1}}
	res, err := kraft.Finalize(ctx, cl, down, withAddrs, kraft.ValidateOnly(), kraft.NodeTimeout(7*time.Second))
	if sent == nil {
		t.Fatalf("nothing sent: %+v, %v", res, err)
	}
	u := sent.FeatureUpdates[0]
	if u.Feature != "share.version" || u.MaxVersionLevel != 1 || u.UpgradeType != int8(kraft.SafeDowngrade) || !sent.ValidateOnly || sent.TimeoutMillis != 7000 {
		t.Errorf("sent %+v, validateOnly %v, timeout %d", u, sent.ValidateOnly, sent.TimeoutMillis)
	}
	ue, ok := errors.AsType[*kraft.UpdateError](err)
	if !ok || !errors.Is(err, kraft.ErrUnsupportedLevel) || !errors.Is(err, kerr.InvalidUpdateVersion) || res.APIVersion != 2 || res.Features[0].From != 2 {
		t.Fatalf("Finalize = %+v, %v; want the v2 top-level error as an *UpdateError", res, err)
	}
	t.Logf("%v", ue)

	// Without the interception kfake applies it; every node then reports it.
	res, err = kraft.Finalize(ctx, cl, down, withAddrs)
	if err != nil || !res.Sent || res.Features[0].Type != kraft.SafeDowngrade {
		t.Fatalf("Finalize = %+v, %v", res, err)
	}
	if _, err := kraft.WaitFinalized(ctx, cl, map[string]int16{"share.version": 1}, 10*time.Second, withAddrs, kraft.PollInterval(10*time.Millisecond)); err != nil {
		t.Fatal(err)
	}

	// Seeds gone (the brokers were replaced since the client was made):
	// the brokers the client has discovered still serve.
	if err := cl.UpdateSeedBrokers("127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	fs, err = kraft.DescribeFeatures(ctx, cl, withAddrs, kraft.NodeTimeout(3*time.Second))
	if err != nil || fs.FirstErr() != nil || len(fs) != 4 {
		t.Errorf("with dead seeds: %v, %v:\n%v", err, fs.FirstErr(), fs)
	}
}
