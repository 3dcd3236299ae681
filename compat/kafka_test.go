package compat_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kupgrade/kupgrade/compat"
	"github.com/kupgrade/kupgrade/kafkatest"
	"github.com/kupgrade/kupgrade/node"
)

// crossChecked lists every release kafkatest can run: the newest patch of
// each KRaft line.
var crossChecked = []string{
	"3.7.2",
	"3.8.1",
	"3.9.2",
	"4.0.2",
	"4.1.2",
	"4.2.2",
	"4.3.2",
	"4.4.0",
}

// TestCompatMatchesRealKafka starts one combined KRaft node of each release
// (formatted by that release's kafka-storage with its defaults) and checks
// compat's model against what the node itself says:
//
//   - ApiVersions from its broker and its controller listener (v4; 3.7
//     and 3.8 speak v3 at most, which is enough as they advertise no
//     feature from level 0): the supported feature ranges
//     (SupportedFeatures, SupportedMetadataVersions, LatestProduction) and
//     the finalized levels of a fresh cluster (DefaultFeatureLevels);
//   - UpdateFeatures with validateOnly: which metadata.version downgrades
//     and which feature level changes the controller accepts
//     (CheckFeatureUpdate, and so didMetadataChange of the levels between
//     SafeDowngradeFloor and LatestProduction), with one deliberate
//     difference (stricterThanKafka);
//   - on 4.x, `kafka-features version-mapping` for every production line
//     and every level where a feature's default changes
//     (ReleaseVersionLevels);
//   - after a restart with unstable feature versions enabled, the highest
//     metadata.version the node defines (UnstableMetadataVersions) and the
//     feature levels it defines beyond production (checkUnstable).
//
// Releases run one after another: one JVM at a time.
func TestCompatMatchesRealKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka JVM per release; run without -short")
	}
	for _, rel := range crossChecked {
		t.Run(rel, func(t *testing.T) { crossCheck(t, compat.MustParseRelease(rel)) })
	}
}

// crossCheck runs every comparison against one node of rel.
func crossCheck(t *testing.T, rel compat.Release) {
	start := time.Now()
	c := kafkatest.Start(t, kafkatest.KRaft(rel.String()), kafkatest.Combined(1))
	t.Logf("node of %v ready after %v", rel, time.Since(start).Round(time.Millisecond))
	node := c.All()[0]
	listeners := []struct{ name, addr string }{{"broker", node.Addr()}, {"controller", node.ControllerAddr()}}

	t.Run("advertised", func(t *testing.T) {
		for _, l := range listeners {
			checkAdvertised(t, rel, l.name, apiVersions(t, l.addr))
		}
	})
	t.Run("updates", func(t *testing.T) { checkUpdates(t, c, rel) })
	t.Run("version-mapping", func(t *testing.T) {
		if rel.Major < 4 {
			t.Skipf("kafka-features version-mapping exists from 4.0 on; %v has none", rel)
		}
		checkVersionMapping(t, c, rel)
	})
	t.Run("unstable", func(t *testing.T) { checkUnstable(t, c, rel) })
}

// apiVersions asks addr for its ApiVersions, with the version pinned to at
// most 4 (the first to list features whose minimum level is 0), once the
// node reports finalized features.
func apiVersions(t *testing.T, addr string) *kmsg.ApiVersionsResponse {
	t.Helper()
	pinned := kversion.Stable()
	pinned.SetMaxKeyVersion(18, 4)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxVersions(pinned))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const within = time.Minute
	ctx, cancel := context.WithTimeoutCause(t.Context(), within,
		fmt.Errorf("%s reported no finalized metadata.version within %v", addr, within))
	defer cancel()
	var last string
	for {
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "kupgrade-compat-test", "0"
		resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
		switch {
		case err != nil:
			last = err.Error()
		case resp.ErrorCode != 0:
			last = kerr.ErrorForCode(resp.ErrorCode).Error()
		case resp.FinalizedFeaturesEpoch < 0 || !slices.ContainsFunc(resp.FinalizedFeatures,
			func(f kmsg.ApiVersionsResponseFinalizedFeature) bool { return f.Name == compat.FeatureMetadataVersion }):
			last = fmt.Sprintf("finalized features epoch %d: %v", resp.FinalizedFeaturesEpoch, finalized(resp))
		default:
			return resp
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%v; last answer: %s", context.Cause(ctx), last)
		case <-time.After(250 * time.Millisecond): // polling an observed condition, bounded by ctx
		}
	}
}

func supported(av *kmsg.ApiVersionsResponse) map[string]compat.LevelRange {
	out := map[string]compat.LevelRange{}
	for _, f := range av.SupportedFeatures {
		out[f.Name] = compat.LevelRange{Min: f.MinVersion, Max: f.MaxVersion}
	}
	return out
}

func finalized(av *kmsg.ApiVersionsResponse) compat.FeatureLevels {
	out := compat.FeatureLevels{}
	for _, f := range av.FinalizedFeatures {
		out[f.Name] = f.MaxVersionLevel
	}
	return out
}

// maxVersionOf returns the highest version of an API key that av lists,
// -1 if none.
func maxVersionOf(av *kmsg.ApiVersionsResponse, key int16) int16 {
	for _, k := range av.ApiKeys {
		if k.ApiKey == key {
			return k.MaxVersion
		}
	}
	return -1
}

// checkAdvertised compares one listener's ApiVersions answer with compat.
func checkAdvertised(t *testing.T, rel compat.Release, listener string, av *kmsg.ApiVersionsResponse) {
	t.Helper()
	wantSupported, err := compat.SupportedFeatures(rel)
	if err != nil {
		t.Fatal(err)
	}
	// franz-go sends the highest version both sides speak, capped at 4 here.
	if want := min(4, maxVersionOf(av, 18)); av.Version != want {
		t.Errorf("%s: answered ApiVersions v%d, want v%d", listener, av.Version, want)
	}
	if av.Version < 4 {
		// Below v4 Kafka hides features whose minimum level is 0; the
		// comparison holds only if compat expects none of them.
		for name, r := range wantSupported {
			if r.Min == 0 {
				t.Errorf("%s: ApiVersions v%d hides %s, which compat says %v advertises from level 0", listener, av.Version, name, rel)
			}
		}
	}
	got := supported(av)
	if diff := cmp.Diff(wantSupported, got); diff != "" {
		t.Errorf("%s: compat.SupportedFeatures(%v) differs from what Kafka advertises (-compat +kafka):\n%s", listener, rel, diff)
	}

	mvs, err := compat.SupportedMetadataVersions(rel)
	if err != nil {
		t.Fatal(err)
	}
	if r := got[compat.FeatureMetadataVersion]; r.Min != mvs.Min.Level || r.Max != mvs.Max.Level {
		t.Errorf("%s: advertises metadata.version %d–%d, compat.SupportedMetadataVersions(%v) = %v (%d–%d)",
			listener, r.Min, r.Max, rel, mvs, mvs.Min.Level, mvs.Max.Level)
	}
	lp, err := compat.LatestProduction(rel)
	if err != nil {
		t.Fatal(err)
	}
	fin := finalized(av)
	if lv := fin[compat.FeatureMetadataVersion]; lv != lp.Level {
		t.Errorf("%s: a fresh cluster finalizes metadata.version %d, compat.LatestProduction(%v) = %v (%d)", listener, lv, rel, lp, lp.Level)
	}
	defaults, err := compat.DefaultFeatureLevels(rel, compat.StaticQuorum)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(defaults.NonZero(), fin); diff != "" {
		t.Errorf("%s: compat.DefaultFeatureLevels(%v, static).NonZero() differs from what a fresh cluster finalizes (-compat +kafka):\n%s", listener, rel, diff)
	}
	t.Logf("%s (ApiVersions v%d): supported %v; finalized %v", listener, av.Version, fmtRanges(got), fin)
}

func fmtRanges(m map[string]compat.LevelRange) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d–%d", name, m[name].Min, m[name].Max))
	}
	return strings.Join(parts, " ")
}

// UpdateFeatures upgrade types (KIP-778).
const (
	upgradeType       int8 = 1
	safeDowngradeType int8 = 2
)

// validateUpdate asks the controller whether it would change feature to
// level, without changing it (validateOnly). It returns the refusal, or nil.
func validateUpdate(t *testing.T, cl *kgo.Client, feature string, level int16, kind int8) error {
	t.Helper()
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis = 30_000
	req.ValidateOnly = true
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature, u.MaxVersionLevel, u.UpgradeType, u.AllowDowngrade = feature, level, kind, kind != upgradeType
	req.FeatureUpdates = append(req.FeatureUpdates, u)
	ctx, cancel := context.WithTimeoutCause(t.Context(), time.Minute, fmt.Errorf("UpdateFeatures %s=%d not answered within 1m", feature, level))
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("UpdateFeatures %s=%d: %v", feature, level, err)
	}
	msg := func(code int16, m *string) error {
		if m != nil && *m != "" {
			return fmt.Errorf("%w: %s", kerr.ErrorForCode(code), *m)
		}
		return kerr.ErrorForCode(code)
	}
	if resp.ErrorCode != 0 {
		return msg(resp.ErrorCode, resp.ErrorMessage)
	}
	for _, r := range resp.Results {
		if r.ErrorCode != 0 {
			return msg(r.ErrorCode, r.ErrorMessage)
		}
	}
	return nil
}

// checkUpdates compares the controller's answers to validate-only
// UpdateFeatures requests with compat.CheckFeatureUpdate, starting from the
// levels of a fresh cluster: every metadata.version from one below the
// lowest finalizable one to one above the latest production one, and every
// level of every feature compat knows plus one.
func checkUpdates(t *testing.T, c *kafkatest.Cluster, rel compat.Release) {
	cl := c.Client(t)
	current, err := compat.DefaultFeatureLevels(rel, compat.StaticQuorum)
	if err != nil {
		t.Fatal(err)
	}
	fin, err := compat.FinalizableMetadataVersions(rel)
	if err != nil {
		t.Fatal(err)
	}
	// check probes feature at every level of levels except its current one
	// and logs the levels Kafka accepts.
	check := func(feature string, levels []int16) {
		from := current.Level(feature)
		var accepted []int16
		for _, to := range levels {
			if to == from {
				continue
			}
			kind := upgradeType
			if to < from {
				kind = safeDowngradeType
			}
			kafkaErr := validateUpdate(t, cl, feature, to, kind)
			compatErr := compat.CheckFeatureUpdate(feature, from, to, current, rel)
			switch {
			case stricterThanKafka(rel, feature, from, to):
				if kafkaErr != nil || !errors.Is(compatErr, compat.ErrFeatureUpdateRefused) {
					t.Errorf("%s %d → %d: Kafka says %v, compat.CheckFeatureUpdate says %v; want Kafka to accept and compat to refuse with ErrFeatureUpdateRefused (if Kafka refuses now, compat's doc is out of date)",
						feature, from, to, orOK(kafkaErr), orOK(compatErr))
				}
			case (kafkaErr == nil) != (compatErr == nil):
				t.Errorf("%s %d → %d: Kafka says %v; compat.CheckFeatureUpdate says %v", feature, from, to, orOK(kafkaErr), orOK(compatErr))
			}
			if kafkaErr == nil {
				accepted = append(accepted, to)
			}
		}
		t.Logf("%s from %d: Kafka accepts %v of %d–%d", feature, from, accepted, levels[0], levels[len(levels)-1])
	}
	lp := current.Level(compat.FeatureMetadataVersion)
	var levels []int16
	for l := fin.Min.Level - 1; l <= lp+1; l++ {
		levels = append(levels, l)
	}
	check(compat.FeatureMetadataVersion, levels)
	floor := compat.SafeDowngradeFloor(mustLookup(t, lp, rel))
	t.Logf("compat.SafeDowngradeFloor(%d) = %v (%d)", lp, floor, floor.Level)
	for _, f := range compat.Features() {
		levels = levels[:0]
		for l := range int16(len(f.Levels)) + 1 {
			levels = append(levels, l)
		}
		check(f.Name, levels)
	}
}

// stricterThanKafka reports the one update compat.CheckFeatureUpdate refuses
// although the release's controller accepts it: a kraft.version upgrade on
// 3.9 and 4.0, which only records the level and leaves the quorum static.
func stricterThanKafka(rel compat.Release, feature string, from, to int16) bool {
	return feature == compat.FeatureKRaftVersion && to > from && to == 1 &&
		(rel.Line() == compat.MustParseRelease("3.9.0") || rel.Line() == compat.MustParseRelease("4.0.0"))
}

func mustLookup(t *testing.T, level int16, rel compat.Release) compat.MetadataVersion {
	t.Helper()
	mv, err := compat.LookupMetadataVersion(level, rel)
	if err != nil {
		t.Fatal(err)
	}
	return mv
}

func orOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// checkVersionMapping compares `kafka-features version-mapping` with
// compat.ReleaseVersionLevels: without --release-version (the latest
// production level), for every production line from 3.3 on, and at every
// level where a feature's default changes and the level below it.
func checkVersionMapping(t *testing.T, c *kafkatest.Cluster, rel compat.Release) {
	lp, err := compat.LatestProduction(rel)
	if err != nil {
		t.Fatal(err)
	}
	fin, err := compat.FinalizableMetadataVersions(rel)
	if err != nil {
		t.Fatal(err)
	}
	versions := []string{""} // the tool's default
	for _, r := range compat.Releases() {
		if r.AtLeast(compat.MustParseRelease("3.3.0")) && !rel.Less(r) && !slices.Contains(versions, r.Short()) {
			versions = append(versions, r.Short())
		}
	}
	for _, f := range compat.Features() {
		for _, fl := range f.Levels {
			b := fl.Bootstrap
			if b.IsZero() || lp.Less(b) {
				continue
			}
			for _, mv := range []compat.MetadataVersion{b, mustLookup(t, b.Level-1, rel)} {
				if fin.Contains(mv) && !slices.Contains(versions, mv.Name) {
					versions = append(versions, mv.Name)
				}
			}
		}
	}
	for _, v := range versions {
		mv := lp
		args := []string{"--bootstrap-server", c.Addrs()[0], "version-mapping"}
		if v != "" {
			if mv, err = compat.ParseMetadataVersion(v, rel); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--release-version", v)
		}
		want, err := compat.ReleaseVersionLevels(mv, rel)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Tool(t.Context(), "", "org.apache.kafka.tools.FeatureCommand", args...)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseMapping(out)
		if err != nil {
			t.Fatalf("version-mapping %s: %v", v, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("--release-version %q: compat.ReleaseVersionLevels(%v, %v) differs from kafka-features version-mapping (-compat +kafka):\n%s", v, mv, rel, diff)
			continue
		}
		t.Logf("--release-version %q: %v", v, got)
	}
}

// parseMapping reads version-mapping's output: one "feature=level" line
// per feature, metadata.version followed by " (version)".
func parseMapping(out string) (compat.FeatureLevels, error) {
	levels := compat.FeatureLevels{}
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("unexpected line %q", line)
		}
		value, _, _ = strings.Cut(value, " ")
		level, err := strconv.ParseInt(value, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("line %q: %v", line, err)
		}
		levels[name] = int16(level)
	}
	if _, ok := levels[compat.FeatureMetadataVersion]; !ok {
		return nil, fmt.Errorf("no metadata.version in %q", out)
	}
	return levels, nil
}

// checkUnstable restarts the node with unstable feature versions enabled
// and checks what it then advertises and accepts: on its broker listener,
// metadata.version up to the highest level its release defines
// (compat.UnstableMetadataVersions) and only feature levels compat's
// catalogue knows; on its controller listener, still the production
// ranges; and the controller accepts the highest unstable level, which
// compat.CheckFeatureUpdate refuses.
func checkUnstable(t *testing.T, c *kafkatest.Cluster, rel compat.Release) {
	nd := c.All()[0]
	flag := "unstable.feature.versions.enable"
	if rel.Line() == compat.MustParseRelease("3.7.0") {
		flag = "unstable.metadata.versions.enable" // renamed in 3.8 (KIP-1022)
	}
	if err := c.Restart(t.Context(), nd.ID(), node.Change{Set: map[string]string{flag: "true"}}); err != nil {
		t.Fatalf("restart with %s=true: %v", flag, err)
	}
	production, err := compat.SupportedFeatures(rel)
	if err != nil {
		t.Fatal(err)
	}
	unstable, err := compat.UnstableMetadataVersions(rel)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := compat.LatestProduction(rel)
	if err != nil {
		t.Fatal(err)
	}
	top := lp
	for _, u := range unstable {
		if top.Less(u) {
			top = u
		}
	}

	got := supported(apiVersions(t, nd.Addr()))
	want := production[compat.FeatureMetadataVersion]
	want.Max = top.Level
	if r := got[compat.FeatureMetadataVersion]; r != want {
		t.Errorf("broker: with %s=true, advertises metadata.version %d–%d; compat expects %d–%d (unstable levels %v)",
			flag, r.Min, r.Max, want.Min, want.Max, unstable)
	}
	for name, r := range got {
		if name == compat.FeatureMetadataVersion {
			continue
		}
		f, ok := compat.LookupFeature(name)
		if !ok {
			t.Errorf("broker: with %s=true, advertises %s %d–%d, a feature compat does not know", flag, name, r.Min, r.Max)
			continue
		}
		if _, ok := f.Level(r.Max); !ok {
			t.Errorf("broker: with %s=true, advertises %s up to %d; compat knows levels up to %d", flag, name, r.Max, len(f.Levels)-1)
		}
	}
	t.Logf("broker with %s=true: supported %v", flag, fmtRanges(got))

	// The controller listener's ApiVersions follows
	// unstable.api.versions.enable instead (ControllerServer's
	// SimpleApiVersionManager).
	if diff := cmp.Diff(production, supported(apiVersions(t, nd.ControllerAddr()))); diff != "" {
		t.Errorf("controller: with only %s=true, advertises other than production ranges (-compat.SupportedFeatures +kafka):\n%s", flag, diff)
	}

	if top == lp {
		return
	}
	if err := validateUpdate(t, c.Client(t), compat.FeatureMetadataVersion, top.Level, upgradeType); err != nil {
		t.Errorf("with %s=true, the controller refuses metadata.version %d (%v): %v", flag, top.Level, top, err)
	}
	fin := compat.FeatureLevels{compat.FeatureMetadataVersion: lp.Level}
	if err := compat.CheckFeatureUpdate(compat.FeatureMetadataVersion, lp.Level, top.Level, fin, rel); !errors.Is(err, compat.ErrUnstableMetadataVersion) {
		t.Errorf("compat.CheckFeatureUpdate(metadata.version %d → unstable %d) = %v, want ErrUnstableMetadataVersion", lp.Level, top.Level, err)
	}
}
