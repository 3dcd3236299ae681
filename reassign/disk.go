package reassign

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultDiskRatio is the share of a destination broker's volume that
// [CheckDisk] lets a plan fill, unless told otherwise: 0.85, leaving room
// for the topics' growth while the moves run and for segment rolls.
const DefaultDiskRatio = 0.85

// DiskSpace is one broker's disk as DescribeLogDirs reports it, summed over
// its log directories: the volumes' total and usable bytes (Kafka 3.3+,
// KIP-827). Total or Usable is -1 when the broker does not report it (Kafka
// before 3.3, or remote storage).
type DiskSpace struct {
	Broker int32 `json:"broker"`
	Total  int64 `json:"total"`
	Usable int64 `json:"usable"`
	// Dirs is the number of log directories summed (with JBOD, a replica
	// lands in one of them: the sum is then an upper bound of the room).
	Dirs int `json:"dirs"`
}

// Known reports whether the broker reported its volume's size.
func (d DiskSpace) Known() bool { return d.Total > 0 && d.Usable >= 0 }

// ErrDiskFull reports a plan that would fill a destination broker's disk
// beyond the allowed ratio, or whose destination's room cannot be told.
var ErrDiskFull = errors.New("reassign: destination disk too full")

// A DiskError names the destination broker that refuses a plan and its
// bytes: Incoming is what the plan's moves would copy onto it (the sum of
// the sizes of the replicas it gains), Used is what its volume holds now
// (Total − Usable), and Limit is Ratio × Total. Unknown marks a broker that
// did not report its volume (Kafka before 3.3): its room cannot be checked.
type DiskError struct {
	Broker                       int32
	Incoming, Used, Total, Limit int64
	Ratio                        float64
	Unknown                      bool
	Partitions                   int // replicas the broker would gain
	Others                       []int32
}

// Error names the broker and its bytes.
func (e *DiskError) Error() string {
	others := ""
	if len(e.Others) > 0 {
		others = fmt.Sprintf(" (and brokers %v too)", e.Others)
	}
	if e.Unknown {
		return fmt.Sprintf("reassign: broker %d does not report its disk's total and usable bytes (Kafka before 3.3?): cannot check that the %d bytes of %d replicas moving onto it fit%s",
			e.Broker, e.Incoming, e.Partitions, others)
	}
	return fmt.Sprintf("reassign: moving %d replicas (%d bytes) onto broker %d would fill its disk to %d of %d bytes (%.1f%%), beyond the %.0f%% allowed (%d bytes; %d used now)%s",
		e.Partitions, e.Incoming, e.Broker, e.Used+e.Incoming, e.Total, 100*float64(e.Used+e.Incoming)/float64(e.Total), 100*e.Ratio, e.Limit, e.Used, others)
}

// Unwrap returns [ErrDiskFull].
func (e *DiskError) Unwrap() error { return ErrDiskFull }

// CheckDisk refuses moves that would fill a destination broker beyond
// ratio of its volume: for each broker that gains replicas ([Move.Adding]),
// the bytes it holds now (space's Total − Usable) plus the sizes of the
// replicas it gains ([Move.Bytes], one replica's size) must stay within
// ratio × Total. It returns nil or a *[DiskError] naming the first broker
// (by id) that does not fit, with the others listed. A destination missing
// from space, or reporting -1 (Kafka before 3.3), is refused as Unknown:
// the check cannot vouch for it, and the caller decides whether to go on
// without it. ratio must be in (0, 1]. It is pure.
func CheckDisk(moves Moves, space map[int32]DiskSpace, ratio float64) error {
	if !(ratio > 0 && ratio <= 1) {
		return fmt.Errorf("%w: disk ratio %v must be in (0, 1]", ErrInvalid, ratio)
	}
	incoming := map[int32]int64{}
	count := map[int32]int{}
	for _, m := range moves {
		for _, b := range m.Adding() {
			incoming[b] += max(m.Bytes, 0)
			count[b]++
		}
	}
	var errs []*DiskError
	for _, b := range slices.Sorted(maps.Keys(incoming)) {
		d, ok := space[b]
		if !ok || !d.Known() {
			errs = append(errs, &DiskError{Broker: b, Incoming: incoming[b], Partitions: count[b], Ratio: ratio, Unknown: true, Total: -1})
			continue
		}
		used := d.Total - d.Usable
		limit := int64(ratio * float64(d.Total))
		if used+incoming[b] > limit {
			errs = append(errs, &DiskError{Broker: b, Incoming: incoming[b], Used: used, Total: d.Total, Limit: limit, Ratio: ratio, Partitions: count[b]})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	// Full disks first: an unknown one is a lesser finding.
	slices.SortStableFunc(errs, func(a, b *DiskError) int {
		switch {
		case a.Unknown == b.Unknown:
			return 0
		case b.Unknown:
			return -1
		}
		return 1
	})
	first := errs[0]
	for _, e := range errs[1:] {
		first.Others = append(first.Others, e.Broker)
	}
	return first
}

// ReadDiskSpace asks brokers (every broker of the cluster if none are given)
// for their log directories' total and usable bytes, summed per broker. A
// directory that reports an error is left out; a broker whose directories
// all do is missing from the result, with the errors joined.
func ReadDiskSpace(ctx context.Context, cl *kgo.Client, brokers ...int32) (map[int32]DiskSpace, error) {
	if cl == nil {
		return nil, fmt.Errorf("%w: ReadDiskSpace needs a client (cl is nil)", ErrInvalid)
	}
	adm := kadm.NewClient(cl)
	var every kadm.TopicsSet // nil: Kafka describes every directory (and its partitions)
	var all kadm.DescribedAllLogDirs
	var err error
	if len(brokers) == 0 {
		all, err = adm.DescribeAllLogDirs(ctx, every)
	} else {
		all = kadm.DescribedAllLogDirs{}
		var errs []error
		for _, b := range brokers {
			ds, berr := adm.DescribeBrokerLogDirs(ctx, b, every)
			if berr != nil {
				errs = append(errs, fmt.Errorf("log dirs of broker %d: %w", b, berr))
				continue
			}
			all[b] = ds
		}
		err = errors.Join(errs...)
	}
	out := map[int32]DiskSpace{}
	var problems []string
	for b, dirs := range all {
		d := DiskSpace{Broker: b}
		for _, dir := range dirs {
			if dir.Err != nil {
				problems = append(problems, fmt.Sprintf("broker %d dir %s: %v", b, dir.Dir, dir.Err))
				continue
			}
			if dir.TotalBytes < 0 || dir.UsableBytes < 0 || d.Total < 0 {
				d.Total, d.Usable = -1, -1
			} else {
				d.Total += dir.TotalBytes
				d.Usable += dir.UsableBytes
			}
			d.Dirs++
		}
		if d.Dirs > 0 {
			out[b] = d
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		err = errors.Join(err, errors.New(strings.Join(problems, "; ")))
	}
	return out, err
}
