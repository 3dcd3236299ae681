package reassign

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/kupgrade/kupgrade/internal/atomicfile"
)

// ErrNoState reports that a [Store] holds nothing yet.
var ErrNoState = errors.New("reassign: store holds no state")

// A Store keeps an [Executor]'s journal: the moves of a run and their states,
// which of them the executor started, and the throttle ledger. The
// executor saves it before every change it makes to the cluster, so that
// after a crash a new Executor given the same Store adopts the moves still
// in flight, finishes them and restores the throttles exactly.
//
// Save must replace the saved bytes atomically: after a crash, Load returns
// either the previous bytes or the new ones, never a mix. Both must return
// promptly once ctx is done. A Store is used by one Executor at a time.
type Store interface {
	// Load returns the saved bytes, or ErrNoState if nothing was saved.
	Load(ctx context.Context) ([]byte, error)
	// Save replaces the saved bytes.
	Save(ctx context.Context, b []byte) error
}

// FileStore is a [Store] kept in one file. Save writes a temporary file
// beside it, syncs it and renames it over the old one, then syncs the
// directory, so a crash leaves either the old state or the new one.
type FileStore struct {
	path string
}

var _ Store = (*FileStore)(nil)

// NewFileStore returns a store kept at path; the file is created by the
// first Save, in a directory that must exist.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// Path returns the store's file.
func (s *FileStore) Path() string { return s.path }

// Load implements [Store].
func (s *FileStore) Load(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoState
	}
	if err != nil {
		return nil, fmt.Errorf("reassign: read store: %w", err)
	}
	return b, nil
}

// Save implements [Store].
func (s *FileStore) Save(ctx context.Context, b []byte) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if err := atomicfile.Write(s.path, b); err != nil {
		return fmt.Errorf("reassign: write store: %w", err)
	}
	return nil
}

// MemoryStore is a [Store] held in memory: for tests, and for runs that need
// no resumption by another process. The zero value is empty and ready to
// use. It is safe for concurrent use.
type MemoryStore struct {
	mu sync.Mutex
	b  []byte
}

var _ Store = (*MemoryStore)(nil)

// Load implements [Store].
func (s *MemoryStore) Load(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b == nil {
		return nil, ErrNoState
	}
	return slices.Clone(s.b), nil
}

// Save implements [Store].
func (s *MemoryStore) Save(ctx context.Context, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append([]byte{}, b...)
	return nil
}
