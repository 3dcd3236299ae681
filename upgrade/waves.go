package upgrade

import (
	"context"
	"errors"
	"fmt"

	"github.com/kupgrade/kupgrade/reassign"
)

// DefaultWaveSize is how many brokers a node-replacement plan replaces at
// a time unless told otherwise ([ReplaceWaves]): six, as managed services
// do.
const DefaultWaveSize = 6

// StepRestartReplacement restarts, with Step.Change, the broker that
// replaced broker Step.Node (the one its provision step started), gated and
// caught up as a [StepRestart] is. ZooKeeper-mode replacement plans use it
// to raise inter.broker.protocol.version on the new brokers once every old
// one is retired.
const StepRestartReplacement StepKind = "restart-replacement"

// ReplaceWaves makes [NewReplacePlan] replace at most n brokers at a time,
// overriding the default of [DefaultWaveSize]: a wave provisions n new
// brokers, moves the replicas of its n old brokers onto them, and retires
// the old ones before the next wave provisions more, so the cluster never
// runs more than n extra brokers. n must be 1 or more.
func ReplaceWaves(n int) PlanOption {
	return planOptionFunc(func(c *planConfig) { c.waveSize = n; c.waveSet = true })
}

// diskConfig is the disk check of node-replacement moves.
type diskConfig struct {
	ratio float64 // 0: reassign.DefaultDiskRatio
	off   bool
}

func (d diskConfig) validate() error {
	if d.ratio < 0 || d.ratio > 1 {
		return fmt.Errorf("upgrade: ReplaceDiskRatio(%v) must be in (0, 1]", d.ratio)
	}
	return nil
}

// ReplaceDiskRatio sets how full the partition moves of a node-replacement
// plan may make a destination broker's disk, overriding the default of
// [reassign.DefaultDiskRatio] (0.85). Before a wave's first move, the
// Runner reads every destination's total and usable bytes (DescribeLogDirs,
// Kafka 3.3+) and the size of each partition to move, and refuses the move
// step, before any move, with a [reassign.DiskError] naming the broker and
// its bytes when its used bytes plus those it would gain exceed ratio of its
// volume ([reassign.CheckDisk]). A destination that reports no sizes (Kafka
// before 3.3) is refused too, as unknown: see [SkipDiskCheck].
func ReplaceDiskRatio(ratio float64) RunnerOption {
	return optionFunc(func(c *config) {
		c.disk.ratio = ratio
		if ratio == 0 {
			c.disk.ratio = -1 // 0 is out of range, not "the default"
		}
	})
}

// SkipDiskCheck turns off the disk check of node-replacement moves (see
// [ReplaceDiskRatio]): for destinations that cannot report their disk's
// size (Kafka before 3.3, or remote storage), whose room the operator has
// checked by other means.
func SkipDiskCheck() RunnerOption { return optionFunc(func(c *config) { c.disk.off = true }) }

// diskCheck refuses moves that would fill a destination beyond the allowed
// ratio, reading the destinations' disks first.
func (u *run) diskCheck(ctx context.Context, i int, moves reassign.Moves) error {
	cfg := u.r.cfg.disk
	if cfg.off {
		u.emit(Event{Kind: EventWaiting, Step: i, Message: "disk check skipped (SkipDiskCheck)"})
		return nil
	}
	ratio := cfg.ratio
	if ratio == 0 {
		ratio = reassign.DefaultDiskRatio
	}
	var dests []int32
	seen := map[int32]bool{}
	for _, m := range moves {
		for _, b := range m.Adding() {
			if !seen[b] {
				seen[b] = true
				dests = append(dests, b)
			}
		}
	}
	read := func(ctx context.Context, brokers []int32) (map[int32]reassign.DiskSpace, error) {
		return reassign.ReadDiskSpace(ctx, u.r.cl, brokers...)
	}
	if d, ok := u.r.cfg.ops.(diskReader); ok {
		read = d.diskSpace // scripted disks in tests
	}
	space, err := read(ctx, dests)
	if err != nil && len(space) < len(dests) {
		return fmt.Errorf("disk check: reading the destinations' log dirs: %w", err)
	}
	if err := reassign.CheckDisk(moves, space, ratio); err != nil {
		if de, ok := errors.AsType[*reassign.DiskError](err); ok && de.Unknown {
			return fmt.Errorf("%w; nothing was moved (SkipDiskCheck goes on without the check)", err)
		}
		return fmt.Errorf("%w; nothing was moved", err)
	}
	var incoming int64
	for _, m := range moves {
		incoming += m.Bytes * int64(len(m.Adding()))
	}
	u.emit(Event{Kind: EventWaiting, Step: i, Message: fmt.Sprintf("disk check passed: %d bytes onto brokers %v, each within %.0f%% of its disk", incoming, dests, 100*ratio)})
	return nil
}

// diskReader is what cluster ops that script disks implement (tests);
// otherwise the disk check reads DescribeLogDirs through the Runner's client.
type diskReader interface {
	diskSpace(ctx context.Context, brokers []int32) (map[int32]reassign.DiskSpace, error)
}

// replacementOf returns the broker that step i's provision step started in
// place of old.
func (u *run) replacementOf(old int32) (int32, error) {
	for j, s := range u.plan.Steps {
		if s.Kind == StepProvision && s.Node == old {
			if p := u.rec.Steps[j].Provisioned; p != nil {
				return *p, nil
			}
			return 0, fmt.Errorf("step %d did not record the broker it provisioned in place of broker %d", j+1, old)
		}
	}
	return 0, fmt.Errorf("the plan provisions no broker in place of broker %d", old)
}

// restartReplacement restarts the broker that replaced st.Node.
func (u *run) restartReplacement(ctx context.Context, i int, st Step, sr *StepRecord, resumed bool) (string, error) {
	id, err := u.replacementOf(st.Node)
	if err != nil {
		return "", err
	}
	st.Node = id
	return u.restart(ctx, i, st, sr, resumed)
}
