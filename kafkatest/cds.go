package kafkatest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// EnvClassDataSharing names an environment variable that turns off the
// class-data sharing archives kafkatest keeps to start JVMs faster, when
// set to "off" or "0".
const EnvClassDataSharing = "KUPGRADE_KAFKA_CDS"

// Class-data sharing: the first JVM of a distribution (per kind: node or
// tool) runs with -XX:ArchiveClassesAtExit and, when it exits normally,
// leaves an archive of the classes it loaded; later JVMs map it with
// -XX:SharedArchiveFile and start markedly faster, with less CPU. (Kafka's
// own container images do the same, KIP-975.) A JVM that cannot use an
// archive (another JDK, another class path) ignores it and starts as usual,
// so an archive can make a start faster but never break it.
var cds struct {
	mu       sync.Mutex
	training map[string]bool
}

// cdsFlags returns the JVM flags that use or make the archive of kind for
// d, and a function to call once the process has ended.
func cdsFlags(d *Distribution, kind string) (flags []string, exited func()) {
	if v := os.Getenv(EnvClassDataSharing); v == "off" || v == "0" || v == "false" {
		return nil, func() {}
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return nil, func() {}
	}
	dir := filepath.Join(base, "kupgrade", "cds")
	sum := sha256.Sum256([]byte(d.Dir + "\x00" + d.Java))
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-java%d-%s.jsa", d.Release, kind, d.JavaMajor, hex.EncodeToString(sum[:4])))
	quiet := "-Xlog:cds=off,cds+dynamic=off"
	if _, err := os.Stat(path); err == nil {
		return []string{quiet, "-XX:SharedArchiveFile=" + path}, func() {}
	}
	cds.mu.Lock()
	defer cds.mu.Unlock()
	if cds.training == nil {
		cds.training = map[string]bool{}
	}
	if cds.training[path] || os.MkdirAll(dir, 0o755) != nil {
		return nil, func() {} // one JVM of this process makes the archive at a time
	}
	cds.training[path] = true
	tmp := fmt.Sprintf("%s.%d-%s.tmp", path, os.Getpid(), strconv.FormatInt(int64(len(cds.training)), 36))
	return []string{quiet, "-XX:ArchiveClassesAtExit=" + tmp}, func() {
		if st, err := os.Stat(tmp); err == nil && st.Size() > 0 {
			os.Rename(tmp, path) // atomic: concurrent makers replace each other's whole file
		} else {
			os.Remove(tmp)
		}
		cds.mu.Lock()
		delete(cds.training, path)
		cds.mu.Unlock()
	}
}
