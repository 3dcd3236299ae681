package atomicfile_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/kupgrade/kupgrade/internal/atomicfile"
)

// A journal saved twice: a reader sees one whole version or the other.
func ExampleWrite() {
	dir, err := os.MkdirTemp("", "journal")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "journal.json")
	for _, rec := range []string{`{"step":1}`, `{"step":2}`} {
		if err := atomicfile.Write(path, []byte(rec)); err != nil {
			log.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	fmt.Println(string(b))
	// Output: {"step":2}
}
