package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// lockFile takes an exclusive advisory lock on path, waiting while another
// process holds it, until ctx is done. The holder writes who it is into the
// file, so a waiter that gives up can say whom it waited for. The lock ends
// with the returned function or with the process.
func lockFile(ctx context.Context, path, purpose string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: lock %s: %w", path, err)
	}
	wait := 50 * time.Millisecond
	announced := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("kafkatest: lock %s: %w", path, err)
		}
		if !announced {
			announced = true
			holder, _ := os.ReadFile(path)
			fmt.Fprintf(os.Stderr, "kafkatest: waiting to %s: lock %s is held by %s\n", purpose, filepath.Base(path), strings.TrimSpace(string(holder)))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			holder, _ := os.ReadFile(path)
			f.Close()
			return nil, fmt.Errorf("kafkatest: gave up waiting to %s: lock %s is held by %s: %w",
				purpose, path, strings.TrimSpace(string(holder)), context.Cause(ctx))
		case <-t.C:
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "pid %d (%s) to %s since %s\n", os.Getpid(), filepath.Base(os.Args[0]), purpose, time.Now().Format(time.RFC3339))
	return func() {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// clusterSlot admits one cluster at a time within this process; the machine-wide
// file lock then admits one process at a time.
var clusterSlot = make(chan struct{}, 1)

// acquireClusterLock waits until no other kafkatest cluster runs on this
// machine. Clusters are heavy (several JVMs); running two at once on a small
// machine makes both flaky.
func acquireClusterLock(ctx context.Context, dir, name string) (release func(), err error) {
	select {
	case clusterSlot <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("kafkatest: gave up waiting for another cluster of this process to close: %w", context.Cause(ctx))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		<-clusterSlot
		return nil, fmt.Errorf("kafkatest: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "cluster.lock"), "run cluster "+name)
	if err != nil {
		<-clusterSlot
		return nil, err
	}
	return func() { unlock(); <-clusterSlot }, nil
}
