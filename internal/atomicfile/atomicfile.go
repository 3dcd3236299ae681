// Package atomicfile replaces a file's content so that a crash leaves either
// the old content or the new, never a mix: what journals and stores need.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces the content of the file at path with b. It writes a
// temporary file beside it, syncs it, renames it over the old one and syncs
// the directory, so the rename itself is durable. On error the temporary
// file is removed and the old content stays.
func Write(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the rename itself durable
		d.Sync()
		d.Close()
	}
	return nil
}
