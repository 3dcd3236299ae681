package upgrade

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// ErrJournalLocked reports a journal that another run holds.
var ErrJournalLocked = errors.New("upgrade: journal is held by another run")

// ErrRunning reports a [Runner.Run] called while the same Runner is running.
var ErrRunning = errors.New("upgrade: this Runner is already running a plan")

// A JournalLockedError says which journal another run holds, and who that
// is, as the holder wrote it when it took the journal.
type JournalLockedError struct {
	// Journal is the journal's file (or "memory journal").
	Journal string
	// Holder describes the holder ("pid 4242 on host ops-1 since
	// 2026-12-03T10:00:00Z"); empty if it could not be read.
	Holder string
}

// Error names the journal and its holder.
func (e *JournalLockedError) Error() string {
	holder := e.Holder
	if holder == "" {
		holder = "a holder that did not say who it is"
	}
	return fmt.Sprintf("upgrade: journal %s is held by another run (%s): two runs of one plan would restart every node twice; wait for it to end, or stop it", e.Journal, holder)
}

// Unwrap returns [ErrJournalLocked].
func (e *JournalLockedError) Unwrap() error { return ErrJournalLocked }

// A LockingJournal is a [Journal] that one run holds at a time. [Runner.Run]
// takes it before it loads the record and lets it go when it returns, so that
// a second run on the same journal (in this process or another) is refused
// with a *[JournalLockedError] instead of restarting every node a second
// time. [FileJournal] and [MemoryJournal] implement it. With a Journal that
// does not, the caller must make sure that one Runner at a time uses it.
type LockingJournal interface {
	Journal
	// Lock takes the journal for one run and returns the function that
	// lets it go, or an error wrapping [ErrJournalLocked] if another run
	// holds it. It does not wait.
	Lock(ctx context.Context) (unlock func(), err error)
}

var (
	_ LockingJournal = (*FileJournal)(nil)
	_ LockingJournal = (*MemoryJournal)(nil)
)

// Lock implements [LockingJournal] with an exclusive lock (flock) on the
// file beside the journal named by its path plus ".lock", which records who
// holds it. The operating system lets the lock go when the holder exits,
// however it exits, so a crashed run never blocks the next; the lock file
// itself stays. On systems without flock (Windows), Lock only records the
// holder and does not exclude other processes.
func (j *FileJournal) Lock(ctx context.Context) (func(), error) {
	path := j.path + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("upgrade: lock journal: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("upgrade: lock journal %s: %w", path, err)
	}
	if !held {
		b, _ := os.ReadFile(path)
		f.Close()
		return nil, &JournalLockedError{Journal: j.path, Holder: strings.TrimSpace(string(b))}
	}
	host, _ := os.Hostname()
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "pid %d on host %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
		f.Sync()
	}
	return func() { f.Close() }, nil // closing the file lets the lock go
}

// memoryLocks holds, for each MemoryJournal a run holds, since when.
var memoryLocks sync.Map // *MemoryJournal → string

// Lock implements [LockingJournal]: a second run on the same MemoryJournal
// is refused while the first holds it.
func (j *MemoryJournal) Lock(ctx context.Context) (func(), error) {
	if since, loaded := memoryLocks.LoadOrStore(j, time.Now().UTC().Format(time.RFC3339)); loaded {
		return nil, &JournalLockedError{Journal: "memory journal", Holder: "a run in this process since " + since.(string)}
	}
	return func() { memoryLocks.Delete(j) }, nil
}

// running holds the Runners whose Run has not returned.
var running sync.Map // *Runner → struct{}

// begin does what Run must do before anything else, and returns what it
// must do when it returns: it refuses a second Run of the same Runner
// ([ErrRunning]) and a plan that does not verify ([Plan.Verify]), then
// takes the journal if it is a [LockingJournal].
func (r *Runner) begin(ctx context.Context, plan Plan) (end func(), err error) {
	if _, busy := running.LoadOrStore(r, struct{}{}); busy {
		return nil, ErrRunning
	}
	defer func() {
		if err != nil {
			running.Delete(r)
		}
	}()
	if err := plan.Verify(); err != nil {
		return nil, err
	}
	unlock := func() {}
	if lj, ok := r.cfg.journal.(LockingJournal); ok {
		if unlock, err = lj.Lock(ctx); err != nil {
			return nil, err
		}
	}
	return func() {
		unlock()
		running.Delete(r)
	}, nil
}
