package kraft_test

// Tests against real Kafka clusters started with kafkatest; -short skips
// them.

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/kraft"
	"github.com/kupgrade/kupgrade/node"
)

// metadata.version levels the tests use.
const (
	mv36IV2 = 14 // 3.6-IV2
	mv37IV2 = 17 // 3.7-IV2: the last level with didMetadataChange below 3.9
	mv37IV4 = 19 // 3.7-IV4: 3.7's latest production level
	mv38IV0 = 20 // 3.8-IV0
	mv39IV0 = 21 // 3.9-IV0
	mv40IV0 = 22 // 4.0-IV0
)

// fetchTimeoutMs is what the tests set controller.quorum.fetch.timeout.ms
// to on the controllers, so that reading it back proves it came from a
// controller (brokers keep Kafka's default, 2000).
const fetchTimeoutMs = 3000

// controllerClient returns a client seeded with the controller listeners,
// as kafka-metadata-quorum --bootstrap-controller would use.
func controllerClient(t *testing.T, c *kafkatest.Cluster) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ControllerAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// eventually polls cond until it reports done, or fails the test after
// within with the last state cond described.
func eventually(t *testing.T, what string, within time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	for {
		done, state := cond()
		if done {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %v; last seen: %s", what, within, state)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// step runs a subtest and logs how long it took.
func step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	start := time.Now()
	t.Run(name, fn)
	t.Logf("%s: %v", name, time.Since(start).Round(time.Millisecond))
}

// TestKafka39 runs every scenario that needs a 3.9 cluster against one
// cluster: three dedicated controllers and one broker, formatted at
// metadata.version 3.8 so that there is something to finalize.
func TestKafka39(t *testing.T) {
	start := time.Now()
	ctrlCfg := map[string]string{"controller.quorum.fetch.timeout.ms": strconv.Itoa(fetchTimeoutMs)}
	c := kafkatest.Start(t, kafkatest.KRaft("3.9.2"), kafkatest.Controllers(3), kafkatest.Brokers(1), kafkatest.FormatMetadataVersion("3.8"),
		kafkatest.NodeConfig(1, ctrlCfg), kafkatest.NodeConfig(2, ctrlCfg), kafkatest.NodeConfig(3, ctrlCfg))
	t.Logf("cluster ready in %v (including any wait for the machine-wide lock)", time.Since(start).Round(time.Millisecond))
	cl := c.Client(t)
	ccl := controllerClient(t, c)
	ctx := t.Context()

	step(t, "features at 3.8", func(t *testing.T) {
		// A controller answers ApiVersions before it has loaded the
		// metadata log (no finalized features yet); kafkatest's readiness
		// does not wait for a follower's load.
		eventually(t, "every controller reports the finalized metadata.version", 30*time.Second, func() (bool, string) {
			fs, err := kraft.DescribeFeatures(ctx, ccl)
			if err != nil {
				return false, err.Error()
			}
			for _, f := range fs {
				if f.Role == node.RoleController && (f.Err != nil || f.Finalized["metadata.version"] != mv38IV0) {
					return false, fs.String()
				}
			}
			return true, ""
		})
		for _, via := range []struct {
			name string
			cl   *kgo.Client
			opts []kraft.ReachOption
		}{
			{"brokers", cl, nil},
			{"brokers with ControllerAddrs", cl, []kraft.ReachOption{kraft.ControllerAddrs(c.ControllerAddrs()...)}},
			{"controllers", ccl, nil},
		} {
			fs, err := kraft.DescribeFeatures(ctx, via.cl, via.opts...)
			if err != nil {
				t.Fatalf("via %s: %v", via.name, err)
			}
			t.Logf("via %s:\n%v", via.name, fs)
			var got []string
			for _, f := range fs {
				got = append(got, f.NodeRef.String())
				if via.cl == ccl && f.Role == node.RoleBroker {
					if f.Err == nil {
						t.Errorf("via controllers: %v answered, but brokers cannot be reached that way", f.NodeRef)
					}
					continue
				}
				if f.Err != nil {
					t.Errorf("via %s: %v: %v", via.name, f.NodeRef, f.Err)
					continue
				}
				if f.APIVersion != 4 {
					t.Errorf("via %s: %v answered ApiVersions v%d, want v4", via.name, f.NodeRef, f.APIVersion)
				}
				want := map[string]compat.LevelRange{"metadata.version": {Min: 1, Max: mv39IV0}, "kraft.version": {Min: 0, Max: 1}}
				if diff := cmp.Diff(want, f.Supported); diff != "" {
					t.Errorf("via %s: %v supported (-want +got):\n%s", via.name, f.NodeRef, diff)
				}
				if diff := cmp.Diff(map[string]int16{"metadata.version": mv38IV0}, f.Finalized); diff != "" {
					t.Errorf("via %s: %v finalized (-want +got):\n%s", via.name, f.NodeRef, diff)
				}
			}
			if diff := cmp.Diff([]string{"controller 1", "controller 2", "controller 3", "broker 4"}, got); diff != "" {
				t.Errorf("via %s: nodes (-want +got):\n%s", via.name, diff)
			}
			level, agreed, ok := fs.Finalized("metadata.version")
			if level != mv38IV0 || !agreed || !ok || kraft.LevelName("metadata.version", level) != "3.8-IV0 (20)" {
				t.Errorf("via %s: Finalized = %d (%s), %v, %v", via.name, level, kraft.LevelName("metadata.version", level), agreed, ok)
			}
		}
	})

	step(t, "fetch timeout from a controller", func(t *testing.T) {
		for _, via := range []*kgo.Client{cl, ccl} {
			ft, err := kraft.QuorumFetchTimeout(ctx, via)
			if err != nil {
				t.Fatal(err)
			}
			q, err := kraft.DescribeQuorum(ctx, via)
			if err != nil {
				t.Fatal(err)
			}
			if ft.Timeout != fetchTimeoutMs*time.Millisecond || ft.Default || ft.Node.Role != node.RoleController || ft.Node.ID != q.LeaderID || ft.Source != "STATIC_BROKER_CONFIG" {
				t.Errorf("QuorumFetchTimeout = %+v, want 3s from the active controller %d's static config", ft, q.LeaderID)
			}
			t.Logf("fetch timeout: %v", ft)
		}
	})

	step(t, "quorum agrees with kafka-metadata-quorum", func(t *testing.T) {
		crossCheckQuorum(t, c, cl, []string{"--bootstrap-server", c.Addrs()[0]})
		crossCheckQuorum(t, c, ccl, []string{"--bootstrap-controller", strings.Join(c.ControllerAddrs(), ",")})
	})

	step(t, "features agree with kafka-features", func(t *testing.T) {
		crossCheckFeatures(t, c, cl)
	})

	step(t, "finalize 3.9-IV0", func(t *testing.T) {
		up := []kraft.FeatureUpdate{{Feature: "metadata.version", Level: mv39IV0}}
		res, err := kraft.Finalize(ctx, cl, up, kraft.ValidateOnly())
		if err != nil || !res.Sent || res.Features[0].Type != kraft.Upgrade || res.Features[0].From != mv38IV0 {
			t.Fatalf("validate-only: %+v, %v", res, err)
		}
		fs, err := kraft.DescribeFeatures(ctx, cl)
		if level, agreed, _ := fs.Finalized("metadata.version"); err != nil || level != mv38IV0 || !agreed {
			t.Fatalf("after a dry run metadata.version is %d (agreed %v, %v), want still 20", level, agreed, err)
		}
		start := time.Now()
		res, err = kraft.Finalize(ctx, cl, up)
		if err != nil {
			t.Fatalf("Finalize: %v", err)
		}
		t.Logf("Finalize took %v (UpdateFeatures v%d): %+v", time.Since(start).Round(time.Millisecond), res.APIVersion, res.Features[0])
		start = time.Now()
		fs, err = kraft.WaitFinalized(ctx, cl, map[string]int16{"metadata.version": mv39IV0}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("every node reported 3.9-IV0 after %v:\n%v", time.Since(start).Round(time.Millisecond), fs)
		if n := len(fs); n != 4 {
			t.Errorf("WaitFinalized saw %d nodes, want 3 controllers and 1 broker", n)
		}
		// The same, asked directly on the controller listeners.
		fs, err = kraft.DescribeFeatures(ctx, ccl)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Role == node.RoleController && (f.Err != nil || f.Finalized["metadata.version"] != mv39IV0) {
				t.Errorf("%v via its own listener: finalized %v, err %v", f.NodeRef, f.Finalized, f.Err)
			}
		}
		crossCheckFeatures(t, c, cl)
		res, err = kraft.Finalize(ctx, cl, up)
		if err != nil || res.Sent || !res.Features[0].Unchanged {
			t.Errorf("finalizing again: %+v, %v; want nothing sent", res, err)
		}
	})

	step(t, "safe downgrade to 3.8-IV0", func(t *testing.T) {
		res, err := kraft.Finalize(ctx, cl, []kraft.FeatureUpdate{{Feature: "metadata.version", Level: mv38IV0}})
		if err != nil || res.Features[0].Type != kraft.SafeDowngrade {
			t.Fatalf("Finalize: %+v, %v", res, err)
		}
		if _, err := kraft.WaitFinalized(ctx, cl, map[string]int16{"metadata.version": mv38IV0}, time.Minute); err != nil {
			t.Fatal(err)
		}
	})

	step(t, "downgrade to 3.6-IV2 refused", func(t *testing.T) {
		down := []kraft.FeatureUpdate{{Feature: "metadata.version", Level: mv36IV2}}
		res, err := kraft.Finalize(ctx, cl, down)
		de, ok := errors.AsType[*compat.DowngradeError](err)
		if !ok || !errors.Is(err, kraft.ErrUnsafeDowngrade) || res.Sent {
			t.Fatalf("Finalize = %+v, %v; want our own *DowngradeError, nothing sent", res, err)
		}
		if de.From.Level != mv38IV0 || de.To.Level != mv36IV2 || de.Blocker.Level != mv37IV2 || de.Floor.Level != mv37IV2 {
			t.Errorf("DowngradeError = %+v, want from 20 to 14 blocked by 3.7-IV2 (17), the floor", de)
		}
		t.Logf("our refusal: %v", err)

		// Sent anyway, Kafka refuses it too, and says why.
		res, err = kraft.Finalize(ctx, cl, down, kraft.SkipPreCheck())
		ue, ok := errors.AsType[*kraft.UpdateError](err)
		if !ok || !res.Sent || !errors.Is(err, kraft.ErrUnsafeDowngrade) || !errors.Is(err, kerr.InvalidUpdateVersion) ||
			!strings.Contains(ue.Message, "might delete metadata") {
			t.Fatalf("Finalize with SkipPreCheck = %+v, %v; want Kafka's INVALID_UPDATE_VERSION as an *UpdateError", res, err)
		}
		if _, ok := errors.AsType[*compat.DowngradeError](res.Features[0].PreCheck); !ok {
			t.Errorf("PreCheck = %v, want the refusal that was skipped", res.Features[0].PreCheck)
		}
		t.Logf("Kafka's refusal: %v", err)

		// The unsafe downgrade exists in the protocol only.
		res, err = kraft.Finalize(ctx, cl, down, kraft.AllowUnsafeDowngrade())
		ue, ok = errors.AsType[*kraft.UpdateError](err)
		if !ok || res.Features[0].Type != kraft.UnsafeDowngrade || !errors.Is(err, kraft.ErrUnsafeDowngrade) ||
			!strings.Contains(ue.Message, "Unsafe metadata downgrade is not supported") {
			t.Fatalf("unsafe downgrade = %+v, %v", res, err)
		}
		t.Logf("Kafka's refusal of the unsafe downgrade: %v", err)
		fs, err := kraft.DescribeFeatures(ctx, cl)
		if level, agreed, _ := fs.Finalized("metadata.version"); err != nil || level != mv38IV0 || !agreed {
			t.Errorf("after the refusals metadata.version is %d (agreed %v, %v), want 20", level, agreed, err)
		}
	})

	step(t, "unsupported level refused", func(t *testing.T) {
		up := []kraft.FeatureUpdate{{Feature: "metadata.version", Level: mv40IV0}}
		res, err := kraft.Finalize(ctx, cl, up)
		var nodes []string
		for _, e := range unjoin(err) {
			if ue, ok := errors.AsType[*kraft.UnsupportedLevelError](e); ok && ue.Supported.Max == mv39IV0 {
				nodes = append(nodes, ue.Node.String())
			}
		}
		if diff := cmp.Diff([]string{"controller 1", "controller 2", "controller 3", "broker 4"}, nodes); diff != "" || res.Sent {
			t.Errorf("pre-check refusals (-want +got):\n%s\n%v", diff, err)
		}
		res, err = kraft.Finalize(ctx, cl, up, kraft.SkipPreCheck())
		if ue, ok := errors.AsType[*kraft.UpdateError](err); !ok || !res.Sent || !errors.Is(err, kraft.ErrUnsupportedLevel) || !strings.Contains(ue.Message, "only supports versions 1-21") {
			t.Errorf("Kafka's refusal = %v", err)
		}
		t.Logf("Kafka's refusal: %v", err)
	})

	step(t, "controller quorum", func(t *testing.T) {
		controllerKills(t, c, cl, ccl)
	})

	// Last, because it leaves a level behind: 3.9 accepts kraft.version=1
	// on a static quorum but only records it.
	step(t, "kraft.version on 3.9", func(t *testing.T) {
		up := []kraft.FeatureUpdate{{Feature: "kraft.version", Level: 1}}
		res, err := kraft.Finalize(ctx, cl, up)
		if !errors.Is(err, kraft.ErrInvalidUpdate) || res.Sent || !strings.Contains(err.Error(), "4.1") {
			t.Fatalf("Finalize kraft.version=1 = %+v, %v; want our refusal (needs 4.1)", res, err)
		}
		res, err = kraft.Finalize(ctx, cl, up, kraft.SkipPreCheck())
		if err != nil || !res.Sent {
			t.Fatalf("Kafka 3.9.2 was expected to accept kraft.version=1 (that is why the pre-check exists): %+v, %v", res, err)
		}
		fs, err := kraft.WaitFinalized(ctx, cl, map[string]int16{"kraft.version": 1}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		q, err := kraft.DescribeQuorum(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range q.Voters {
			if !v.DirectoryID.IsZero() {
				t.Errorf("voter %d has directory id %v: did the quorum become dynamic?", v.ID, v.DirectoryID)
			}
		}
		t.Logf("Kafka 3.9.2 reports kraft.version=1 finalized on every node, yet the voters still have no directory ids (a static quorum):\n%v", fs)
	})
}

// unjoin flattens errors.Join trees.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// controllerKills kills voters and checks what CanRestartController says.
func controllerKills(t *testing.T, c *kafkatest.Cluster, cl, ccl *kgo.Client) {
	ctx := t.Context()
	ft, err := kraft.QuorumFetchTimeout(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	verdict := func(id int32) (kraft.QuorumVerdict, kraft.Quorum, error) {
		q, err := kraft.DescribeQuorum(ctx, cl, kraft.NodeTimeout(5*time.Second))
		if err != nil {
			return kraft.QuorumVerdict{}, q, err
		}
		return kraft.CanRestartController(q, id, ft.Timeout), q, nil
	}
	var approved kraft.Quorum // the quorum allOK last judged
	allOK := func() (bool, string) {
		q, err := kraft.DescribeQuorum(ctx, cl, kraft.NodeTimeout(5*time.Second))
		if err != nil {
			return false, err.Error()
		}
		approved = q
		var states []string
		ok := true
		for _, id := range q.VoterIDs() {
			v := kraft.CanRestartController(q, id, ft.Timeout)
			ok = ok && v.OK
			states = append(states, v.String())
		}
		return ok && len(q.Voters) == 3, strings.Join(states, "; ")
	}
	eventually(t, "every controller may restart at the start", 30*time.Second, allOK)

	q, err := kraft.DescribeQuorum(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	leader := q.LeaderID
	var followers []int32
	for _, id := range q.VoterIDs() {
		if id != leader {
			followers = append(followers, id)
		}
	}
	if order := q.RollOrder(); order[len(order)-1] != leader {
		t.Errorf("RollOrder() = %v, want the leader %d last", order, leader)
	}
	dead, other := followers[0], followers[1]
	t.Logf("leader %d, killing follower %d, then asking about follower %d", leader, dead, other)

	if err := c.Node(dead).Kill(); err != nil {
		t.Fatal(err)
	}
	var last kraft.QuorumVerdict
	took := eventually(t, "restarting a second controller is refused", time.Minute, func() (bool, string) {
		v, _, err := verdict(other)
		if err != nil {
			return false, err.Error()
		}
		last = v
		return !v.OK, v.String()
	})
	t.Logf("refused %v after the kill (fetch timeout %v): %v", took.Round(time.Millisecond), ft.Timeout, last)
	var lagging []int32
	for _, r := range last.Reasons {
		if r.Rule == kraft.RuleNotCaughtUp {
			lagging = append(lagging, r.Nodes...)
		}
	}
	if !slices.Equal(lagging, []int32{dead}) || !strings.Contains(last.String(), "voter "+strconv.Itoa(int(dead))) {
		t.Errorf("reasons %v, want the dead voter %d named", last.Reasons, dead)
	}
	if v, _, err := verdict(leader); err != nil || v.OK {
		t.Errorf("restarting the leader with a voter down: %v, %v; want refused", v, err)
	}
	// Allowed once the other two are caught up with each other (the
	// refusal above only needed the dead one behind).
	eventually(t, "restarting the dead voter itself allowed", 30*time.Second, func() (bool, string) {
		v, _, err := verdict(dead)
		if err != nil {
			return false, err.Error()
		}
		return v.OK, v.String()
	})
	// The controllers' own listeners still answer, the dead one aside.
	if qc, err := kraft.DescribeQuorum(ctx, ccl); err != nil || qc.LeaderID != leader {
		t.Errorf("DescribeQuorum via controllers with %d down: leader %d, %v", dead, qc.LeaderID, err)
	}
	fs, err := kraft.DescribeFeatures(ctx, cl, kraft.NodeTimeout(5*time.Second))
	if f, ok := fs.Node(node.RoleController, dead); err != nil || !ok || f.Err == nil {
		t.Errorf("DescribeFeatures with controller %d down: %v, %v; want an entry with an error", dead, f, err)
	}

	if err := c.StartNode(ctx, dead); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, "controller back and caught up", time.Minute, func() (bool, string) {
		v, _, err := verdict(other)
		if err != nil {
			return false, err.Error()
		}
		return v.OK, v.String()
	})
	t.Logf("controller %d caught up %v after its start returned", dead, took.Round(time.Millisecond))

	if err := c.Node(leader).Kill(); err != nil {
		t.Fatal(err)
	}
	var newQ kraft.Quorum
	took = eventually(t, "a new leader", time.Minute, func() (bool, string) {
		q, err := kraft.DescribeQuorum(ctx, cl, kraft.NodeTimeout(5*time.Second))
		if err != nil {
			return false, err.Error()
		}
		newQ = q
		return q.LeaderID >= 0 && q.LeaderID != leader, q.String()
	})
	t.Logf("new leader %d (epoch %d, was %d) seen %v after killing leader %d", newQ.LeaderID, newQ.LeaderEpoch, q.LeaderEpoch, took.Round(time.Millisecond), leader)
	if newQ.LeaderEpoch <= q.LeaderEpoch {
		t.Errorf("leader epoch %d after the election, was %d", newQ.LeaderEpoch, q.LeaderEpoch)
	}
	if qc, err := kraft.DescribeQuorum(ctx, ccl); err != nil || qc.LeaderID != newQ.LeaderID {
		t.Errorf("via controllers: leader %d, %v; want %d", qc.LeaderID, err, newQ.LeaderID)
	}
	v := kraft.CanRestartController(newQ, newQ.LeaderID, ft.Timeout)
	if v.OK || !strings.Contains(v.String(), "voter "+strconv.Itoa(int(leader))) {
		t.Errorf("restarting the new leader with the old one dead: %v", v)
	}

	if err := c.StartNode(ctx, leader); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, "every controller may restart again", time.Minute, allOK)
	t.Logf("all three caught up %v after the old leader's start returned", took.Round(time.Millisecond))

	// A hung controller (SIGSTOP) holds its connections open and answers
	// nothing: the call must still return, naming it. A follower of the
	// quorum just judged (the old leader's return may have moved the
	// leadership since newQ was read).
	hung := approved.LeaderID
	for _, id := range approved.VoterIDs() {
		if id != approved.LeaderID {
			hung = id
			break
		}
	}
	if err := c.Node(hung).Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	fs, err = kraft.DescribeFeatures(ctx, cl, kraft.NodeTimeout(2*time.Second))
	took = time.Since(start)
	if err := c.Node(hung).Resume(); err != nil {
		t.Fatal(err)
	}
	f, ok := fs.Node(node.RoleController, hung)
	if err != nil || !ok || f.Err == nil || !strings.Contains(f.Err.Error(), "controller "+strconv.Itoa(int(hung))+" did not answer ApiVersions within 2s") {
		t.Errorf("DescribeFeatures with controller %d paused: entry %+v, %v", hung, f, err)
	}
	if took > 10*time.Second {
		t.Errorf("DescribeFeatures with a paused controller took %v; each node is bounded by 2s", took)
	}
	t.Logf("with controller %d paused, DescribeFeatures returned in %v: %v", hung, took.Round(time.Millisecond), f.Err)
	eventually(t, "every controller may restart after the pause", time.Minute, allOK)
}

// crossCheckQuorum compares DescribeQuorum with kafka-metadata-quorum
// describe --status and --replication run against the same cluster between
// two DescribeQuorum calls: values that only grow (high watermark, log end
// offsets, timestamps) must lie between the two, the rest must be equal.
func crossCheckQuorum(t *testing.T, c *kafkatest.Cluster, cl *kgo.Client, bootstrap []string) {
	t.Helper()
	ctx := t.Context()
	for _, mode := range []string{"--status", "--replication"} {
		before, err := kraft.DescribeQuorum(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Tool(ctx, "", "org.apache.kafka.tools.MetadataQuorumCommand", append(bootstrap, "describe", mode)...)
		if err != nil {
			t.Fatalf("kafka-metadata-quorum %v describe %s: %v", bootstrap, mode, err)
		}
		after, err := kraft.DescribeQuorum(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if before.LeaderID != after.LeaderID || before.LeaderEpoch != after.LeaderEpoch {
			t.Logf("an election happened during the cross-check (%v, then %v); not comparing", before, after)
			continue
		}
		t.Logf("kafka-metadata-quorum %s describe %s:\n%s", bootstrap[0], mode, out)
		between := func(what string, lo, got, hi int64) {
			if got < lo || got > hi {
				t.Errorf("%s %s: tool says %d, DescribeQuorum said %d before and %d after", mode, what, got, lo, hi)
			}
		}
		if mode == "--status" {
			st := parseStatus(t, out)
			if st["LeaderId"] != strconv.Itoa(int(before.LeaderID)) || st["LeaderEpoch"] != strconv.Itoa(int(before.LeaderEpoch)) {
				t.Errorf("tool: leader %s epoch %s; DescribeQuorum: %d epoch %d", st["LeaderId"], st["LeaderEpoch"], before.LeaderID, before.LeaderEpoch)
			}
			hw, _ := strconv.ParseInt(st["HighWatermark"], 10, 64)
			between("HighWatermark", before.HighWatermark, hw, after.HighWatermark)
			voters, endpoints := parseReplicaList(st["CurrentVoters"])
			if diff := cmp.Diff(before.VoterIDs(), voters); diff != "" {
				t.Errorf("voters (-ours +tool):\n%s", diff)
			}
			var ours []string
			for _, n := range before.Nodes {
				for _, l := range n.Listeners {
					ours = append(ours, strconv.Itoa(int(n.ID))+"="+l.Name+"://"+l.Addr())
				}
			}
			if diff := cmp.Diff(ours, endpoints); diff != "" {
				t.Errorf("voter endpoints (-ours +tool):\n%s", diff)
			}
			observers, _ := parseReplicaList(st["CurrentObservers"])
			if diff := cmp.Diff(before.ObserverIDs(), observers, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("observers (-ours +tool):\n%s", diff)
			}
			continue
		}
		rows := parseTable(t, out)
		if len(rows) != len(before.Voters)+len(before.Observers) {
			t.Errorf("tool lists %d replicas, DescribeQuorum %d voters and %d observers", len(rows), len(before.Voters), len(before.Observers))
		}
		for _, row := range rows {
			id, _ := strconv.Atoi(row["NodeId"])
			b, isVoter := before.Voter(int32(id))
			a, _ := after.Voter(int32(id))
			status := "Follower"
			switch {
			case int32(id) == before.LeaderID:
				status = "Leader"
			case !isVoter:
				status = "Observer"
				b, _ = before.Observer(int32(id))
				a, _ = after.Observer(int32(id))
			}
			if row["Status"] != status {
				t.Errorf("node %d: tool says %s, DescribeQuorum %s", id, row["Status"], status)
			}
			if _, ok := row["DirectoryId"]; ok && row["DirectoryId"] != b.DirectoryID.String() { // 3.9+
				t.Errorf("node %d: directory id %s, DescribeQuorum %v", id, row["DirectoryId"], b.DirectoryID)
			}
			num := func(k string) int64 { n, _ := strconv.ParseInt(row[k], 10, 64); return n }
			between("node "+row["NodeId"]+" LogEndOffset", b.LogEndOffset, num("LogEndOffset"), a.LogEndOffset)
			between("node "+row["NodeId"]+" LastFetchTimestamp", b.LastFetch.UnixMilli(), num("LastFetchTimestamp"), a.LastFetch.UnixMilli())
			between("node "+row["NodeId"]+" LastCaughtUpTimestamp", b.LastCaughtUp.UnixMilli(), num("LastCaughtUpTimestamp"), a.LastCaughtUp.UnixMilli())
			if num("Lag") < 0 || (status == "Leader" && num("Lag") != 0) {
				t.Errorf("node %d: lag %d", id, num("Lag"))
			}
		}
	}
}

// crossCheckFeatures compares DescribeFeatures with kafka-features describe,
// asked through a broker and through the controllers.
func crossCheckFeatures(t *testing.T, c *kafkatest.Cluster, cl *kgo.Client, opts ...kraft.ReachOption) {
	t.Helper()
	ctx := t.Context()
	leader := leaderOf(t, cl)
	for _, via := range []struct {
		args []string
		role node.Role
	}{
		{[]string{"--bootstrap-server", c.Addrs()[0]}, node.RoleBroker},
		{[]string{"--bootstrap-controller", strings.Join(c.ControllerAddrs(), ",")}, node.RoleController},
	} {
		before, err := kraft.DescribeFeatures(ctx, cl, opts...)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Tool(ctx, "", "org.apache.kafka.tools.FeatureCommand", append(via.args, "describe")...)
		if err != nil {
			t.Fatal(err)
		}
		after, err := kraft.DescribeFeatures(ctx, cl, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kafka-features %s describe:\n%s", via.args[0], out)
		tool := parseFeatures(t, out)
		// The tool asks one node of that role; every node of the role must
		// say the same (but epochs: see below).
		var names []string
		for _, nf := range before {
			if nf.Role != via.role {
				continue
			}
			if nf.Err != nil {
				t.Fatalf("%v: %v", nf.NodeRef, nf.Err)
			}
			names = names[:0]
			for name, r := range nf.Supported {
				names = append(names, name)
				tf, ok := tool[name]
				if !ok {
					t.Errorf("%v supports %s, kafka-features does not list it", nf.NodeRef, name)
					continue
				}
				want := featureLine{
					min:       kraftLevel(name, r.Min),
					max:       kraftLevel(name, r.Max),
					finalized: kraftLevel(name, nf.Finalized[name]),
				}
				if diff := cmp.Diff(want, featureLine{tf.min, tf.max, tf.finalized, 0}, cmp.AllowUnexported(featureLine{})); diff != "" {
					t.Errorf("%v %s (-ours +tool):\n%s", nf.NodeRef, name, diff)
				}
				// Controllers count the epoch from the last feature change,
				// brokers from their metadata offset, which moves all the
				// time. The tool asks the active controller: its epoch must
				// lie between ours before and after.
				b, _ := before.Node(nf.Role, nf.ID)
				a, _ := after.Node(nf.Role, nf.ID)
				if via.role == node.RoleController && nf.ID == leader && (tf.epoch < b.FinalizedEpoch || tf.epoch > a.FinalizedEpoch) {
					t.Errorf("%v epoch: tool %d, ours %d before and %d after", nf.NodeRef, tf.epoch, b.FinalizedEpoch, a.FinalizedEpoch)
				}
			}
			if len(names) != len(tool) {
				t.Errorf("%v supports %v, kafka-features lists %d features", nf.NodeRef, names, len(tool))
			}
		}
	}
}

func leaderOf(t *testing.T, cl *kgo.Client) int32 {
	q, err := kraft.DescribeQuorum(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return q.LeaderID
}

// kraftLevel renders a level as kafka-features does: metadata.version by
// name ("3.9-IV0"), other features by number.
func kraftLevel(feature string, level int16) string {
	name := kraft.LevelName(feature, level)
	if i := strings.Index(name, " ("); i > 0 {
		return name[:i]
	}
	return name
}

type featureLine struct {
	min, max, finalized string
	epoch               int64
}

var featureRE = regexp.MustCompile(`^Feature: (\S+)\s+SupportedMinVersion: (\S+)\s+SupportedMaxVersion: (\S+)\s+FinalizedVersionLevel: (\S+)\s+Epoch: (-?\d+|-)`)

// parseFeatures reads kafka-features describe.
func parseFeatures(t *testing.T, out string) map[string]featureLine {
	t.Helper()
	m := map[string]featureLine{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		g := featureRE.FindStringSubmatch(strings.TrimSpace(line))
		if g == nil {
			t.Fatalf("kafka-features line %q not understood", line)
		}
		epoch, _ := strconv.ParseInt(g[5], 10, 64)
		m[g[1]] = featureLine{min: g[2], max: g[3], finalized: g[4], epoch: epoch}
	}
	return m
}

// parseStatus reads describe --status ("Key:   value" lines).
func parseStatus(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if m["LeaderId"] == "" {
		t.Fatalf("describe --status output not understood:\n%s", out)
	}
	return m
}

var (
	replicaIDRE = regexp.MustCompile(`"id": (\d+)`)
	endpointRE  = regexp.MustCompile(`"(\w+)://([^"]+)"`)
	replicaRE   = regexp.MustCompile(`\{[^{}]*\}`)
)

// parseReplicaList reads CurrentVoters or CurrentObservers: 3.9 prints
// [{"id": 1, "directoryId": null, "endpoints": ["CONTROLLER://host:port"]}, …],
// older releases [1, 2, 3].
func parseReplicaList(s string) (ids []int32, endpoints []string) {
	objs := replicaRE.FindAllString(s, -1)
	if len(objs) == 0 {
		for f := range strings.FieldsFuncSeq(strings.Trim(s, "[]"), func(r rune) bool { return r == ',' || r == ' ' }) {
			n, _ := strconv.Atoi(f)
			ids = append(ids, int32(n))
		}
		return ids, nil
	}
	for _, o := range objs {
		g := replicaIDRE.FindStringSubmatch(o)
		if g == nil {
			continue
		}
		ids = append(ids, int32(must(strconv.Atoi(g[1]))))
		for _, e := range endpointRE.FindAllStringSubmatch(o, -1) {
			endpoints = append(endpoints, g[1]+"="+e[1]+"://"+e[2])
		}
	}
	slices.Sort(ids)
	return ids, endpoints
}

func must[T any](v T, _ error) T { return v }

// parseTable reads describe --replication: a header row and tab-separated
// rows.
func parseTable(t *testing.T, out string) []map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	split := func(l string) []string {
		var f []string
		for c := range strings.SplitSeq(l, "\t") {
			if c = strings.TrimSpace(c); c != "" {
				f = append(f, c)
			}
		}
		return f
	}
	head := split(lines[0])
	var rows []map[string]string
	for _, l := range lines[1:] {
		f := split(l)
		if len(f) != len(head) {
			t.Fatalf("describe --replication row %q does not match header %q", l, lines[0])
		}
		row := map[string]string{}
		for i, h := range head {
			row[h] = f[i]
		}
		rows = append(rows, row)
	}
	return rows
}

// TestKafka37Combined checks the paths a 3.7 cluster needs: DescribeQuorum
// v1 (no controller endpoints, no directory ids), ApiVersions v3,
// controllers reached only through ControllerAddrs or a controller-seeded
// client and identified with DescribeCluster, and combined nodes asked as
// a broker and as a controller.
func TestKafka37Combined(t *testing.T) {
	start := time.Now()
	cfg := map[string]string{"controller.quorum.fetch.timeout.ms": strconv.Itoa(fetchTimeoutMs)}
	c := kafkatest.Start(t, kafkatest.KRaft("3.7.2"), kafkatest.Combined(3), kafkatest.BrokerConfig(cfg))
	t.Logf("cluster ready in %v (including any wait for the machine-wide lock)", time.Since(start).Round(time.Millisecond))
	cl := c.Client(t)
	ccl := controllerClient(t, c)
	ctx := t.Context()
	withAddrs := kraft.ControllerAddrs(c.ControllerAddrs()...)

	step(t, "quorum", func(t *testing.T) {
		q, err := kraft.DescribeQuorum(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("via brokers: %v", q)
		if q.Version != 1 || len(q.Nodes) != 0 || !slices.Equal(q.VoterIDs(), []int32{1, 2, 3}) || len(q.Observers) != 0 {
			t.Errorf("DescribeQuorum = %+v; want v1 without nodes, voters 1-3, no observers (combined)", q)
		}
		qc, err := kraft.DescribeQuorum(ctx, ccl)
		if err != nil || qc.LeaderID != q.LeaderID || qc.LeaderEpoch != q.LeaderEpoch {
			t.Errorf("via controllers: %v, %v; want the same leader and epoch", qc, err)
		}
		eventually(t, "every controller may restart", 30*time.Second, func() (bool, string) {
			q, err := kraft.DescribeQuorum(ctx, cl)
			if err != nil {
				return false, err.Error()
			}
			var vs []string
			ok := true
			for _, id := range q.VoterIDs() {
				v := kraft.CanRestartController(q, id, fetchTimeoutMs*time.Millisecond)
				ok = ok && v.OK
				vs = append(vs, v.String())
			}
			return ok, strings.Join(vs, "; ")
		})
		crossCheckQuorum(t, c, cl, []string{"--bootstrap-server", c.Addrs()[0]})
		crossCheckQuorum(t, c, ccl, []string{"--bootstrap-controller", strings.Join(c.ControllerAddrs(), ",")})
	})

	step(t, "features", func(t *testing.T) {
		fs, err := kraft.DescribeFeatures(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("via brokers, no controller addresses:\n%v", fs)
		for _, f := range fs {
			switch {
			case f.Role == node.RoleBroker && (f.Err != nil || f.APIVersion != 3 || f.Finalized["metadata.version"] != mv37IV4):
				t.Errorf("%v: v%d finalized %v, err %v; want v3 and 3.7-IV4", f.NodeRef, f.APIVersion, f.Finalized, f.Err)
			case f.Role == node.RoleController && (!errors.Is(f.Err, kraft.ErrNoAddress) || !strings.Contains(f.Err.Error(), "ControllerAddrs")):
				t.Errorf("%v: err %v; want a hint to pass ControllerAddrs (3.7 reports no controller endpoints)", f.NodeRef, f.Err)
			}
		}
		if len(fs) != 6 {
			t.Errorf("%d entries, want brokers 1-3 and controllers 1-3", len(fs))
		}
		for _, via := range []struct {
			name string
			cl   *kgo.Client
			opts []kraft.ReachOption
		}{{"brokers with ControllerAddrs", cl, []kraft.ReachOption{withAddrs}}, {"controllers", ccl, nil}} {
			fs, err := kraft.DescribeFeatures(ctx, via.cl, via.opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("via %s:\n%v", via.name, fs)
			var ctrls []int32
			for _, f := range fs {
				if f.Role != node.RoleController {
					continue
				}
				ctrls = append(ctrls, f.ID)
				if f.Err != nil || f.APIVersion != 3 || f.Supported["metadata.version"] != (compat.LevelRange{Min: 1, Max: mv37IV4}) {
					t.Errorf("via %s: %v: v%d supported %v, err %v", via.name, f.NodeRef, f.APIVersion, f.Supported, f.Err)
				}
			}
			if !slices.Equal(ctrls, []int32{1, 2, 3}) {
				t.Errorf("via %s: controllers %v; want 1-3, identified with DescribeCluster", via.name, ctrls)
			}
			if via.cl == ccl {
				if f, ok := fs.Node(node.RoleBroker, -1); !ok || f.Err == nil {
					t.Errorf("via controllers: want one broker entry saying brokers cannot be reached, got %v", fs)
				}
			} else if err := fs.CheckSupport("metadata.version", mv37IV4); err != nil {
				t.Errorf("CheckSupport: %v", err)
			}
		}
		crossCheckFeatures(t, c, cl, withAddrs)
	})

	step(t, "fetch timeout", func(t *testing.T) {
		ft, err := kraft.QuorumFetchTimeout(ctx, cl)
		if err != nil || ft.Node.Role != node.RoleBroker || ft.Timeout != fetchTimeoutMs*time.Millisecond {
			t.Errorf("without controller addresses: %v, %v; want 3s from a broker listener", ft, err)
		}
		ft, err = kraft.QuorumFetchTimeout(ctx, cl, withAddrs)
		if err != nil || ft.Node.Role != node.RoleController || ft.Timeout != fetchTimeoutMs*time.Millisecond {
			t.Errorf("with controller addresses: %v, %v; want 3s from a controller (DescribeConfigs on controllers: 3.7+)", ft, err)
		}
	})

	step(t, "validate a safe downgrade", func(t *testing.T) {
		res, err := kraft.Finalize(ctx, cl, []kraft.FeatureUpdate{{Feature: "metadata.version", Level: mv37IV2}}, withAddrs, kraft.ValidateOnly())
		if err != nil || !res.Sent || res.Features[0].Type != kraft.SafeDowngrade {
			t.Fatalf("validate-only safe downgrade 19→17: %+v, %v", res, err)
		}
		res, err = kraft.Finalize(ctx, cl, []kraft.FeatureUpdate{{Feature: "metadata.version", Level: mv36IV2}}, withAddrs, kraft.ValidateOnly(), kraft.SkipPreCheck())
		if !errors.Is(err, kraft.ErrUnsafeDowngrade) || !res.Sent {
			t.Errorf("validate-only downgrade 19→14 sent anyway: %+v, %v; want Kafka's refusal", res, err)
		}
		fs, err := kraft.DescribeFeatures(ctx, cl, withAddrs)
		if level, agreed, _ := fs.Finalized("metadata.version"); err != nil || level != mv37IV4 || !agreed {
			t.Errorf("after dry runs: %d, agreed %v, %v; want still 3.7-IV4", level, agreed, err)
		}
	})
}

// TestKafka41Single checks a 4.1 single combined node: UpdateFeatures v2
// (one answer for the whole request), features whose minimum level is 0,
// the single-voter warning, and a kraft.version upgrade that 4.1 supports.
func TestKafka41Single(t *testing.T) {
	start := time.Now()
	c := kafkatest.Start(t, kafkatest.KRaft("4.1.2"), kafkatest.Combined(1), kafkatest.FormatMetadataVersion("4.0"))
	t.Logf("cluster ready in %v (including any wait for the machine-wide lock)", time.Since(start).Round(time.Millisecond))
	cl := c.Client(t)
	ctx := t.Context()

	step(t, "single voter", func(t *testing.T) {
		q, err := kraft.DescribeQuorum(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		v := kraft.CanRestartController(q, 1, 0)
		if !v.OK || len(v.Warnings) == 0 || v.Warnings[0].Rule != kraft.RuleSingleVoter {
			t.Errorf("CanRestartController = %v; want allowed with the single-voter warning", v)
		}
		t.Logf("%v: %v", q, v)
	})

	step(t, "features", func(t *testing.T) {
		fs, err := kraft.DescribeFeatures(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%v", fs)
		for _, f := range fs {
			if f.Err != nil || f.APIVersion < 4 {
				t.Errorf("%v: v%d, %v", f.NodeRef, f.APIVersion, f.Err)
			}
			for _, name := range []string{"group.version", "transaction.version", "eligible.leader.replicas.version", "kraft.version"} {
				if r, ok := f.Supported[name]; !ok || r.Min != 0 {
					t.Errorf("%v does not list %s with minimum 0 (ApiVersions v4 should show it): %v", f.NodeRef, name, f.Supported)
				}
			}
		}
		crossCheckFeatures(t, c, cl)
	})

	step(t, "finalize 4.1-IV1", func(t *testing.T) {
		up := []kraft.FeatureUpdate{{Feature: "metadata.version", Level: 27}}
		res, err := kraft.Finalize(ctx, cl, up)
		if err != nil || res.APIVersion != 2 {
			t.Fatalf("Finalize: %+v, %v; want UpdateFeatures v2", res, err)
		}
		if _, err := kraft.WaitFinalized(ctx, cl, map[string]int16{"metadata.version": 27}, time.Minute); err != nil {
			t.Fatal(err)
		}
		res, err = kraft.Finalize(ctx, cl, []kraft.FeatureUpdate{{Feature: "metadata.version", Level: 30}}, kraft.SkipPreCheck())
		if !errors.Is(err, kraft.ErrUnsupportedLevel) || !errors.Is(err, kerr.InvalidUpdateVersion) {
			t.Errorf("metadata.version 30 sent anyway: %+v, %v; want Kafka's top-level refusal as ErrUnsupportedLevel", res, err)
		}
		t.Logf("Kafka's refusal (v2, whole request): %v", err)
	})

	step(t, "kraft.version 1", func(t *testing.T) {
		q, err := kraft.DescribeQuorum(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if v := q.Voters[0]; !v.DirectoryID.IsZero() {
			t.Errorf("before: voter %d has directory id %v; a static quorum has none", v.ID, v.DirectoryID)
		}
		res, err := kraft.Finalize(ctx, cl, []kraft.FeatureUpdate{{Feature: "kraft.version", Level: 1}})
		t.Logf("Finalize kraft.version=1: %+v, %v", res, err)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kraft.WaitFinalized(ctx, cl, map[string]int16{"kraft.version": 1}, time.Minute); err != nil {
			t.Fatal(err)
		}
		q, err = kraft.DescribeQuorum(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if v := q.Voters[0]; v.DirectoryID.IsZero() {
			t.Errorf("after: voter %d has no directory id; 4.1 should have made the quorum dynamic (KAFKA-16538)", v.ID)
		}
		t.Logf("after kraft.version=1: voters %+v", q.Voters)
	})
}
