package upgrade

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestZooKeeperServers(t *testing.T) {
	tests := []struct {
		connect string
		want    []string
	}{
		{"", nil},
		{"127.0.0.1:2181", []string{"127.0.0.1:2181"}},
		{"zk1:2181,zk2:2182/kafka", []string{"zk1:2181", "zk2:2182"}},
		{"zk1, zk2:2999/chroot/deeper", []string{"zk1:2181", "zk2:2999"}},
	}
	for _, tt := range tests {
		if got := zkServers(tt.connect); !cmp.Equal(got, tt.want) {
			t.Errorf("zkServers(%q) = %q, want %q", tt.connect, got, tt.want)
		}
	}
}

// fourLetterServer answers every connection's four-letter word with answer
// (nothing if answer is empty: it reads and hangs up), on 127.0.0.1.
func fourLetterServer(t *testing.T, answer string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(buf); err == nil && string(buf) == "srvr" && answer != "" {
				c.Write([]byte(answer))
			}
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestZooKeeperServes checks what counts as a ZooKeeper that serves.
func TestZooKeeperServes(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	tests := []struct {
		name, addr string
		wantErr    string // "" for none
	}{
		{"serving", fourLetterServer(t, "Zookeeper version: 3.8.4\nMode: standalone\n"), ""},
		{"up without srvr", fourLetterServer(t, "srvr is not executed because it is not in the whitelist.\n"), ""},
		{"out of its quorum", fourLetterServer(t, "This ZooKeeper instance is not currently serving requests\n"), "not currently serving"},
		{"silent", fourLetterServer(t, ""), "no answer to srvr"},
		{"down", refused, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := zkServes(t.Context(), tt.addr, 2*time.Second)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("zkServes = %v, want %q", err, tt.wantErr)
			}
		})
	}
	// check: one server serving is enough; none, and the error names them
	// and the way out.
	up := fourLetterServer(t, "Mode: follower\n")
	p := &zkProbe{known: true, servers: []string{refused, up}, timeout: 2 * time.Second}
	if err := p.check(context.Background(), nil); err != nil {
		t.Errorf("one of two serving: %v", err)
	}
	p = &zkProbe{known: true, servers: []string{refused}, timeout: 2 * time.Second}
	err = p.check(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), refused) || !strings.Contains(err.Error(), "NoZooKeeperProbe") {
		t.Errorf("none serving: %v, want an error naming %s and NoZooKeeperProbe", err, refused)
	}
	p.off = true
	if err := p.check(context.Background(), nil); err != nil {
		t.Errorf("probe off: %v", err)
	}
}
