package kafkatest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"time"

	"github.com/kupgrade/kupgrade/compat"
)

// An Option configures a [Cluster] made by [New] or [Start].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	mode            compat.Mode
	release         string
	brokers         int
	controllers     int
	combined        int
	dir             string
	brokerConfig    map[string]string
	nodeConfig      map[int32]map[string]string
	racks           []string
	brokerHeapMB    int
	controllerHeap  int
	metadataVersion string
	resolve         []ResolveOption
	startTimeout    time.Duration
	stopTimeout     time.Duration
	lockTimeout     time.Duration
	logger          *slog.Logger
	progress        io.Writer
	lockDir         string
	secure          *secureConfig // Secure; nil: PLAINTEXT
	containers      *containers   // nil: JVMs on this machine
}

func defaultConfig() config {
	return config{
		brokers:        3,
		controllers:    -1, // decided in finish: 3 dedicated controllers in KRaft mode
		brokerHeapMB:   512,
		controllerHeap: 256,
		startTimeout:   3 * time.Minute,
		stopTimeout:    2 * time.Minute,
		lockTimeout:    30 * time.Minute,
		logger:         slog.New(slog.DiscardHandler),
		progress:       os.Stderr,
		brokerConfig:   map[string]string{},
		nodeConfig:     map[int32]map[string]string{},
	}
}

// ZooKeeper makes a ZooKeeper-mode cluster of the given 3.x release: one
// ZooKeeper server (run from that release's jars) and, by default, three
// brokers with ids 1, 2 and 3.
func ZooKeeper(release string) Option {
	return optionFunc(func(c *config) { c.mode, c.release = compat.ModeZooKeeper, release })
}

// KRaft makes a KRaft cluster of the given release (3.7.0 or newer). By
// default it has three dedicated controllers (ids 1–3) and three brokers
// (ids 4–6); see [Controllers], [Brokers] and [Combined].
func KRaft(release string) Option {
	return optionFunc(func(c *config) { c.mode, c.release = compat.ModeKRaft, release })
}

// Brokers sets the number of broker-only nodes, overriding the default of 3.
func Brokers(n int) Option { return optionFunc(func(c *config) { c.brokers = n }) }

// Controllers sets the number of dedicated KRaft controllers, overriding the
// default of 3. Controllers get the lowest node ids.
func Controllers(n int) Option { return optionFunc(func(c *config) { c.controllers = n }) }

// Combined makes n combined KRaft nodes (process.roles=broker,controller),
// ids 1..n, instead of dedicated controllers; brokers default to none. Fewer
// JVMs: the cheapest cluster with a real quorum.
func Combined(n int) Option {
	return optionFunc(func(c *config) {
		c.combined = n
		if c.controllers < 0 {
			c.controllers = 0
		}
		c.brokers = 0
	})
}

// Dir sets the directory under which every node keeps its data, config and
// log, overriding the default: a temporary directory ([Start] uses
// t.TempDir()) removed by Close. A given Dir is kept.
func Dir(dir string) Option { return optionFunc(func(c *config) { c.dir = dir }) }

// BrokerConfig adds static config to every node that has the broker role
// (and, for keys a controller reads, to every node), overriding kafkatest's
// defaults. Later options win.
func BrokerConfig(kv map[string]string) Option {
	return optionFunc(func(c *config) { maps.Copy(c.brokerConfig, kv) })
}

// NodeConfig adds static config to one node, overriding [BrokerConfig] and
// kafkatest's defaults.
func NodeConfig(id int32, kv map[string]string) Option {
	return optionFunc(func(c *config) {
		if c.nodeConfig[id] == nil {
			c.nodeConfig[id] = map[string]string{}
		}
		maps.Copy(c.nodeConfig[id], kv)
	})
}

// Racks assigns broker.rack to the broker-role nodes in id order, cycling
// through racks: Racks("a", "b") puts brokers 1, 3, 5 in "a" and 2, 4, 6 in "b".
func Racks(racks ...string) Option { return optionFunc(func(c *config) { c.racks = racks }) }

// HeapMB sets the maximum JVM heap of brokers and combined nodes, overriding
// the default of 512 MiB. Controllers and ZooKeeper get 256 MiB.
func HeapMB(mb int) Option { return optionFunc(func(c *config) { c.brokerHeapMB = mb }) }

// FormatMetadataVersion formats a KRaft cluster at this release version
// (kafka-storage format --release-version, e.g. "3.8" or "3.8-IV0") instead of
// the release's latest production metadata.version.
func FormatMetadataVersion(v string) Option {
	return optionFunc(func(c *config) { c.metadataVersion = v })
}

// Resolving passes options to [Resolve] for every release the cluster runs.
func Resolving(opts ...ResolveOption) Option {
	return optionFunc(func(c *config) { c.resolve = append(c.resolve, opts...) })
}

// StartTimeout bounds the wait for a node to be ready after it starts,
// overriding the default of 3m.
func StartTimeout(d time.Duration) Option { return optionFunc(func(c *config) { c.startTimeout = d }) }

// StopTimeout bounds the wait for a node to finish its controlled shutdown
// after SIGTERM, overriding the default of 2m; then it is killed.
func StopTimeout(d time.Duration) Option { return optionFunc(func(c *config) { c.stopTimeout = d }) }

// LockTimeout bounds the wait for other kafkatest clusters on this machine to
// close, overriding the default of 30m. Only one cluster runs at a time.
func LockTimeout(d time.Duration) Option { return optionFunc(func(c *config) { c.lockTimeout = d }) }

// Logger sets the logger for node lifecycle events, overriding the default,
// which discards.
func Logger(l *slog.Logger) Option { return optionFunc(func(c *config) { c.logger = l }) }

// ProgressOutput sets where slow first-time work (resolving a release with
// Maven) is reported, overriding the default of os.Stderr.
func ProgressOutput(w io.Writer) Option { return optionFunc(func(c *config) { c.progress = w }) }

func (c *config) finish() error {
	if c.controllers < 0 {
		c.controllers = 0
		if c.mode == compat.ModeKRaft && c.combined == 0 {
			c.controllers = 3
		}
	}
	switch c.mode {
	case 0:
		return errors.New("kafkatest: no mode: pass ZooKeeper(release) or KRaft(release)")
	case compat.ModeZooKeeper:
		if c.controllers > 0 || c.combined > 0 {
			return errors.New("kafkatest: Controllers and Combined are KRaft options; a ZooKeeper-mode cluster has brokers only")
		}
		if c.metadataVersion != "" {
			return errors.New("kafkatest: MetadataVersion is a KRaft option; pin inter.broker.protocol.version with BrokerConfig in ZooKeeper mode")
		}
	}
	major, minor, _, err := parseRelease(c.release)
	if err != nil {
		return err
	}
	if c.mode == compat.ModeZooKeeper && major >= 4 {
		return fmt.Errorf("kafkatest: Kafka %s has no ZooKeeper mode (removed in 4.0); use KRaft(%q)", c.release, c.release)
	}
	if c.mode == compat.ModeKRaft && (major < 3 || major == 3 && minor < 7) {
		return fmt.Errorf("kafkatest: KRaft clusters need Kafka 3.7.0 or newer, not %s", c.release)
	}
	if c.brokers < 0 || c.controllers < 0 || c.combined < 0 {
		return errors.New("kafkatest: node counts cannot be negative")
	}
	if c.brokers+c.combined == 0 {
		return errors.New("kafkatest: a cluster needs at least one broker or combined node")
	}
	if c.mode == compat.ModeKRaft && c.controllers+c.combined == 0 {
		return errors.New("kafkatest: a KRaft cluster needs at least one controller or combined node")
	}
	if c.controllers > 0 && c.combined > 0 {
		return errors.New("kafkatest: mix of dedicated controllers and combined nodes is not supported")
	}
	if c.logger == nil {
		return errors.New("kafkatest: Logger(nil): to discard logs, leave the option out")
	}
	if c.brokerHeapMB < 128 {
		return fmt.Errorf("kafkatest: HeapMB(%d) is too small for a broker (128 MiB at least)", c.brokerHeapMB)
	}
	return nil
}
