package reassign

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kupgrade/kupgrade/internal/kfaketest"
)

// recordingStore is a MemoryStore that keeps every state saved.
type recordingStore struct {
	MemoryStore
	mu    sync.Mutex
	saved [][]byte
}

func (s *recordingStore) Save(ctx context.Context, b []byte) error {
	s.mu.Lock()
	s.saved = append(s.saved, bytes.Clone(b))
	s.mu.Unlock()
	return s.MemoryStore.Save(ctx, b)
}

// seedStates returns every state an executor saves in a run on kfake: moves
// submitted, dropped and submitted again, failed as stale, a move to a
// broker that does not exist, a rate and a replica list set before the run,
// throttles set and restored.
func seedStates(f *testing.F) [][]byte {
	f.Helper()
	_, cl := kfaketest.New(f, kfake.NumBrokers(4), kfake.SeedTopics(3, "t", "u"))
	adm := kadm.NewClient(cl)
	if _, err := adm.AlterBrokerConfigs(f.Context(), []kadm.AlterConfig{{Name: LeaderRateConfig, Value: kadm.StringPtr("777")}}, 1); err != nil {
		f.Fatal(err)
	}
	if _, err := adm.AlterTopicConfigs(f.Context(), []kadm.AlterConfig{{Name: FollowerReplicasConfig, Value: kadm.StringPtr("9:9")}}, "u"); err != nil {
		f.Fatal(err)
	}
	v, err := metadata(f.Context(), cl, 10*time.Second, []string{"t", "u"})
	if err != nil {
		f.Fatal(err)
	}
	// Each move replaces the last replica with a broker of 0..3 that does
	// not hold the partition; the last one with broker 99, which is not.
	var moves Moves
	for _, tp := range []struct {
		topic string
		p     int32
	}{{"t", 0}, {"t", 1}, {"u", 2}, {"u", 0}} {
		from := v.topics[tp.topic][tp.p].replicas
		to := slices.Clone(from)
		for b := int32(0); b < 4; b++ {
			if !slices.Contains(from, b) {
				to[len(to)-1] = b
			}
		}
		moves = append(moves, Move{Topic: tp.topic, Partition: tp.p, From: from, To: to})
	}
	moves[3].To[len(moves[3].To)-1] = 99
	store := &recordingStore{}
	e, err := NewExecutor(cl, store, fastOpts()...)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := e.Run(f.Context(), moves); err != nil {
		f.Fatal(err)
	}
	if len(store.saved) < 3 {
		f.Fatalf("the run saved %d states, want several", len(store.saved))
	}
	return store.saved
}

func FuzzStoreLoad(f *testing.F) {
	for _, b := range seedStates(f) {
		f.Add(b)
	}
	for _, s := range []string{`{}`, `null`, `{"version":1,"ledger":{"rate":0}}`,
		`{"version":1,"id":"x","ledger":{"rate":5,"before":{},"owned":{"brokers":{"1":{"leaderRate":"5"}}},"inFlight":[{"topic":"t","partition":0,"from":[1],"to":[1,1]}]},"moves":[{"move":{"topic":"t","partition":0,"from":[1],"to":[2]},"state":"finished","kind":"nosuch"}]}`} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "state.json")
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1")) // never asked: only done runs are resumed here
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(cl.Close)
	f.Fuzz(func(t *testing.T, b []byte) {
		// FileStore.Load hands back the file's bytes; the executor's
		// load decodes them into its journal, or says they are damaged.
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		e := &Executor{store: NewFileStore(path), cfg: defaultConfig()}
		j, err := e.load(t.Context())
		if err != nil {
			return
		}
		// What decodes encodes, and decodes again to the same journal.
		m1, err := json.Marshal(j)
		if err != nil {
			t.Fatalf("a journal that loads does not encode: %v", err)
		}
		j2, err := decodeJournal(m1)
		if err != nil {
			t.Fatalf("a journal's own encoding does not decode: %v\n%s", err, m1)
		}
		m2, err := json.Marshal(j2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m1, m2) {
			t.Fatalf("round trip changed the journal:\n%s\n%s", m1, m2)
		}
		// What a resumed run reads of it.
		rs := j.results()
		for _, r := range rs.Sorted() {
			if r.Err != nil {
				_ = r.Err.Error()
			}
		}
		_ = rs.FirstErr()
		_ = j.unapplied()
		_, _ = j.Ledger.Before(), j.Ledger.Owned()
		cfg := defaultConfig()
		if _, err := newRun(e, &cfg, j); err != nil {
			return // refused (a move without targets): Resume returns the error
		}
		if j.Done {
			// Resume of a finished run returns its results without
			// touching the cluster.
			ex, err := NewExecutor(cl, &MemoryStore{b: bytes.Clone(b)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := ex.Resume(t.Context())
			if err != nil {
				t.Fatalf("Resume of a finished run: %v", err)
			}
			if diff := cmp.Diff(resultKinds(rs), resultKinds(got)); diff != "" {
				t.Errorf("Resume of a finished run (-journal +resume):\n%s", diff)
			}
		}
		// The throttle ledger a crashed run left: a new rate, every move
		// in flight finished, then closed, it owns nothing any more.
		l := j.Ledger
		if _, err := l.SetRate(l.Rate() + 1); err != nil {
			t.Fatalf("SetRate: %v", err)
		}
		l.Finish(l.InFlight()...)
		l.Close()
		if own := l.Owned(); len(own.Brokers)+len(own.Topics) > 0 || len(l.InFlight()) > 0 {
			t.Fatalf("after Close the ledger still owns %+v, moves in flight %v", own, l.InFlight())
		}
	})
}
