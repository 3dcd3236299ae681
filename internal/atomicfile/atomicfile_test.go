package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kupgrade/kupgrade/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	for _, content := range []string{"first\n", "second, longer than the first\n", ""} {
		if err := atomicfile.Write(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("ReadFile = %q, %v; want %q", got, err, content)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v (%v), want only the file: no temporary left", entries, err)
	}
	if err := atomicfile.Write(filepath.Join(path, "no", "such", "dir"), nil); err == nil {
		t.Error("Write into a missing directory succeeded")
	}
}
