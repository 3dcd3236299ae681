package upgrade

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeZooKeeper serves the part of ZooKeeper's protocol that zkread.go
// speaks, over a map of znodes, and records the operations it got.
type fakeZooKeeper struct {
	mu       sync.Mutex
	nodes    map[string][]byte
	versions map[string]int32 // data versions; 0 if absent
	ops      []string
	// staleReads makes every conditional write see a version one above
	// the one reads report: another writer came in between.
	staleReads bool
}

func (z *fakeZooKeeper) serve(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go z.session(conn)
		}
	}()
	return l.Addr().String()
}

func (z *fakeZooKeeper) session(conn net.Conn) {
	defer conn.Close()
	if _, err := zkRecv(conn); err != nil { // ConnectRequest
		return
	}
	var resp bytes.Buffer
	binary.Write(&resp, binary.BigEndian, int32(0))
	binary.Write(&resp, binary.BigEndian, int32(4000))
	binary.Write(&resp, binary.BigEndian, int64(7))
	binary.Write(&resp, binary.BigEndian, int32(16))
	resp.Write(make([]byte, 16))
	zkSend(conn, resp.Bytes())
	// A notification first (xid -1), which the client must skip.
	var ping bytes.Buffer
	binary.Write(&ping, binary.BigEndian, int32(-1))
	binary.Write(&ping, binary.BigEndian, int64(0))
	binary.Write(&ping, binary.BigEndian, int32(0))
	zkSend(conn, ping.Bytes())
	for {
		req, err := zkRecv(conn)
		if err != nil || len(req) < 8 {
			return
		}
		xid := int32(binary.BigEndian.Uint32(req[0:4]))
		op := int32(binary.BigEndian.Uint32(req[4:8]))
		if op == -11 {
			return
		}
		n := binary.BigEndian.Uint32(req[8:12])
		path := string(req[12 : 12+n])
		rest := req[12+n:]
		var out bytes.Buffer
		binary.Write(&out, binary.BigEndian, xid)
		binary.Write(&out, binary.BigEndian, int64(99))
		z.mu.Lock()
		if z.versions == nil {
			z.versions = map[string]int32{}
		}
		data, ok := z.nodes[path]
		version := z.versions[path]
		code := int32(0)
		switch {
		case op == 4:
			z.ops = append(z.ops, "get "+path)
		case op == 2:
			z.ops = append(z.ops, "delete "+path)
		}
		switch {
		case !ok:
			code = -101
		case op == 2:
			delete(z.nodes, path)
			delete(z.versions, path)
		case op == 5:
			dn := binary.BigEndian.Uint32(rest[0:4])
			nd, want := rest[4:4+dn], int32(binary.BigEndian.Uint32(rest[4+dn:8+dn]))
			if z.staleReads {
				version++
			}
			if want != -1 && want != version {
				code = -103
				break
			}
			z.ops = append(z.ops, "set "+path+" "+string(nd))
			z.nodes[path] = slices.Clone(nd)
			z.versions[path] = version + 1
		}
		z.mu.Unlock()
		binary.Write(&out, binary.BigEndian, code)
		if code == 0 && op == 4 {
			binary.Write(&out, binary.BigEndian, int32(len(data)))
			out.Write(data)
			stat := make([]byte, 68)
			binary.BigEndian.PutUint32(stat[32:36], uint32(version))
			out.Write(stat)
		}
		zkSend(conn, out.Bytes())
	}
}

func TestZooKeeperClient(t *testing.T) {
	z := &fakeZooKeeper{nodes: map[string][]byte{
		"/kt/migration":        []byte(`{"version":0,"kraft_metadata_offset":93,"kraft_controller_id":3000,"kraft_metadata_epoch":1,"kraft_controller_epoch":1}`),
		"/kt/controller":       []byte(`{"version":2,"brokerid":3000,"timestamp":"1","kraftControllerEpoch":1}`),
		"/kt/controller_epoch": []byte("5"),
	}}
	addr := z.serve(t)
	ops := &liveOps{}
	connect := addr + "/kt"
	m, err := ops.migrationState(t.Context(), connect)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Done() || m.Offset != 93 || m.Controller != 3000 || !m.Started {
		t.Errorf("migration state %+v, want done at offset 93 by 3000", m)
	}
	if id, err := ops.zooKeeperController(t.Context(), connect); err != nil || id != -1 {
		t.Errorf("controller %d, %v; want -1 while a KRaft controller holds /controller", id, err)
	}
	if _, err := ops.clearMigration(t.Context(), connect); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.clearMigration(t.Context(), connect); err != nil { // gone already: fine
		t.Errorf("second clear: %v", err)
	}
	m, err = ops.migrationState(t.Context(), connect)
	if err != nil || m.Started || m.Done() {
		t.Errorf("after the clear: %+v, %v; want not started", m, err)
	}
	z.mu.Lock()
	z.nodes["/kt/controller"] = []byte(`{"version":2,"brokerid":2,"timestamp":"1","kraftControllerEpoch":-1}`)
	z.mu.Unlock()
	if id, err := ops.zooKeeperController(t.Context(), connect); err != nil || id != 2 {
		t.Errorf("controller %d, %v; want broker 2", id, err)
	}
	want := []string{"get /kt/migration", "get /kt/controller",
		"get /kt/controller", "get /kt/controller_epoch", "delete /kt/controller", "delete /kt/migration", // epoch 5 > KRaft's 1: kept
		"get /kt/controller", "delete /kt/controller", "delete /kt/migration", "get /kt/migration", "get /kt/controller"}
	z.mu.Lock()
	defer z.mu.Unlock()
	if !slices.Equal(z.ops, want) {
		t.Errorf("operations %v, want %v", z.ops, want)
	}
}

func TestZooKeeperClientGivesUp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() // accepts (the kernel does) but never answers
	start := time.Now()
	_, err = zkGetData(t.Context(), l.Addr().String(), "/migration", 300*time.Millisecond)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("zkGetData on a silent server = %v after %v; want an error within the timeout", err, time.Since(start))
	}
	if _, err := parseMigrationZNode([]byte(`{"version":0}`)); err == nil {
		t.Error("a /migration znode without kraft_metadata_offset parsed")
	}
	if _, err := parseMigrationZNode([]byte(`not json`)); err == nil || errors.Is(err, errNoNode) {
		t.Errorf("bad JSON: %v", err)
	}
}

// TestClearMigrationRaisesEpoch: with a KRaft controller epoch above the
// /controller_epoch, the clear raises /controller_epoch to it (a
// conditional write) before deleting /controller, so that the ZooKeeper
// controller elected next outranks the partition states the KRaft
// controller wrote; a concurrent change of /controller_epoch fails the
// clear instead of being overwritten.
func TestClearMigrationRaisesEpoch(t *testing.T) {
	z := &fakeZooKeeper{nodes: map[string][]byte{
		"/kt/migration":        []byte(`{"version":0,"kraft_metadata_offset":93,"kraft_controller_id":3000,"kraft_metadata_epoch":7,"kraft_controller_epoch":7}`),
		"/kt/controller":       []byte(`{"version":2,"brokerid":3000,"timestamp":"1","kraftControllerEpoch":7}`),
		"/kt/controller_epoch": []byte("4"),
	}, versions: map[string]int32{"/kt/controller_epoch": 3}}
	connect := z.serve(t) + "/kt"
	ops := &liveOps{}
	note, err := ops.clearMigration(t.Context(), connect)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(note, "from 4 to the KRaft controller epoch 7") {
		t.Errorf("note %q, want it to say the epoch went from 4 to 7", note)
	}
	z.mu.Lock()
	got, ops2 := string(z.nodes["/kt/controller_epoch"]), slices.Clone(z.ops)
	z.mu.Unlock()
	if got != "7" {
		t.Errorf("/controller_epoch %q, want 7", got)
	}
	want := []string{"get /kt/controller", "get /kt/controller_epoch", "set /kt/controller_epoch 7", "delete /kt/controller", "delete /kt/migration"}
	if diff := cmp.Diff(want, ops2); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}

	// Another writer bumped /controller_epoch between the read and the write.
	z.mu.Lock()
	z.nodes["/kt/controller"] = []byte(`{"version":2,"brokerid":3000,"timestamp":"1","kraftControllerEpoch":9}`)
	z.versions["/kt/controller_epoch"] = 4 // the fake's reads report this version…
	z.mu.Unlock()
	z.staleReads = true // …but the write is checked against a newer one
	if _, err := ops.clearMigration(t.Context(), connect); !errors.Is(err, errBadVersion) {
		t.Errorf("clear after a concurrent epoch change = %v, want errBadVersion", err)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if _, ok := z.nodes["/kt/controller"]; !ok {
		t.Error("/controller was deleted although the epoch could not be raised")
	}
}

// TestQuietElection: the controller check names a partition already led by
// its preferred replica, so that the election it asks for moves nothing,
// and another partition only when there is none.
func TestQuietElection(t *testing.T) {
	meta := func(leaders ...int32) *kmsg.MetadataResponse {
		m := kmsg.NewPtrMetadataResponse()
		for i, l := range leaders {
			topic := fmt.Sprintf("t%d", i)
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = &topic
			p := kmsg.NewMetadataResponseTopicPartition()
			p.Leader, p.Replicas = l, []int32{1, 2, 3}
			mt.Partitions = append(mt.Partitions, p)
			m.Topics = append(m.Topics, mt)
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		leaders []int32
		topic   string
		ok      bool
	}{
		{"preferred-later", []int32{2, 3, 1}, "t2", true},
		{"none-preferred", []int32{2, 3}, "t0", true},
		{"no-partitions", nil, "", false},
	} {
		topic, _, ok := quietElection(meta(tc.leaders...))
		if topic != tc.topic || ok != tc.ok {
			t.Errorf("%s: got %q %v, want %q %v", tc.name, topic, ok, tc.topic, tc.ok)
		}
	}
}
