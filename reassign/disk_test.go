package reassign_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kupgrade/kupgrade/reassign"
)

func TestCheckDisk(t *testing.T) {
	const mib = 1 << 20
	moves := reassign.Moves{
		{Topic: "a", Partition: 0, From: []int32{1, 2}, To: []int32{4, 2}, Bytes: 300 * mib},
		{Topic: "a", Partition: 1, From: []int32{2, 3}, To: []int32{2, 5}, Bytes: 100 * mib},
		{Topic: "a", Partition: 2, From: []int32{1, 3}, To: []int32{4, 5}, Bytes: 200 * mib},
	}
	// Broker 4 gains 500 MiB, broker 5 300 MiB.
	space := map[int32]reassign.DiskSpace{
		4: {Broker: 4, Total: 1000 * mib, Usable: 900 * mib, Dirs: 1}, // 100 used + 500 = 600 ≤ 850
		5: {Broker: 5, Total: 1000 * mib, Usable: 700 * mib, Dirs: 1}, // 300 used + 300 = 600 ≤ 850
	}
	if err := reassign.CheckDisk(moves, space, reassign.DefaultDiskRatio); err != nil {
		t.Errorf("CheckDisk with room = %v, want nil", err)
	}
	// At a ratio of 0.55, both overflow: broker 4 is named, 5 listed.
	err := reassign.CheckDisk(moves, space, 0.55)
	de, ok := errors.AsType[*reassign.DiskError](err)
	if !ok || !errors.Is(err, reassign.ErrDiskFull) {
		t.Fatalf("CheckDisk(0.55) = %v, want a *DiskError", err)
	}
	want := reassign.DiskError{Broker: 4, Incoming: 500 * mib, Used: 100 * mib, Total: 1000 * mib, Limit: 550 * mib, Ratio: 0.55, Partitions: 2, Others: []int32{5}}
	if diff := cmp.Diff(want, *de); diff != "" {
		t.Errorf("DiskError (-want +got):\n%s", diff)
	}
	for _, s := range []string{"broker 4", "524288000 bytes", "629145600 of 1048576000 bytes", "55%", "brokers [5]"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q does not say %q", err, s)
		}
	}
	// Exactly at the limit fits; one byte over does not.
	edge := map[int32]reassign.DiskSpace{4: {Broker: 4, Total: 1000, Usable: 500}}
	m := reassign.Moves{{Topic: "a", Partition: 0, From: []int32{1}, To: []int32{4}, Bytes: 350}}
	if err := reassign.CheckDisk(m, edge, 0.85); err != nil {
		t.Errorf("500 used + 350 of 1000 at 0.85: %v, want nil", err)
	}
	m[0].Bytes = 351
	if err := reassign.CheckDisk(m, edge, 0.85); err == nil {
		t.Error("500 used + 351 of 1000 at 0.85: nil, want a refusal")
	}
	// A destination that does not report its disk (Kafka < 3.3: -1), or
	// is missing, is refused as unknown; a full one is named before it.
	unknown := map[int32]reassign.DiskSpace{4: {Broker: 4, Total: -1, Usable: -1}, 5: {Broker: 5, Total: 1000 * mib, Usable: 100 * mib}}
	err = reassign.CheckDisk(moves, unknown, 0.85)
	if de, ok := errors.AsType[*reassign.DiskError](err); !ok || de.Broker != 5 || de.Unknown || !slices32(de.Others, 4) {
		t.Errorf("CheckDisk with 5 full and 4 unknown = %v, want broker 5 named, 4 listed", err)
	}
	delete(unknown, 5)
	err = reassign.CheckDisk(moves, unknown, 0.85)
	if de, ok := errors.AsType[*reassign.DiskError](err); !ok || !de.Unknown || de.Broker != 4 || !strings.Contains(err.Error(), "does not report") {
		t.Errorf("CheckDisk with 4 unknown, 5 missing = %v, want an unknown refusal naming broker 4", err)
	}
	// Sources are not checked; moves onto no broker check nothing.
	if err := reassign.CheckDisk(nil, nil, 0.85); err != nil {
		t.Errorf("no moves: %v", err)
	}
	for _, r := range []float64{0, -0.1, 1.01} {
		if err := reassign.CheckDisk(moves, space, r); !errors.Is(err, reassign.ErrInvalid) {
			t.Errorf("ratio %v: %v, want ErrInvalid", r, err)
		}
	}
}

func slices32(got []int32, want ...int32) bool { return cmp.Equal(got, want) }
