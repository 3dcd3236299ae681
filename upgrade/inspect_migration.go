package upgrade

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kupgrade/kupgrade/node"
)

// A MigrationPhase is how far a ZooKeeper to KRaft migration has gone, as
// [Inspect] observes it ([Inspection.Migration]).
type MigrationPhase string

// The migration phases Inspect tells apart.
const (
	// MigrationPhaseZooKeeper: ZooKeeper mode, no KRaft controller known and no
	// broker in migration mode.
	MigrationPhaseZooKeeper MigrationPhase = "zookeeper"
	// MigrationPhaseControllers: KRaft controllers are known (the Orchestrator
	// lists them, or the quorum answered) but no broker runs in migration
	// mode yet.
	MigrationPhaseControllers MigrationPhase = "controllers-provisioned"
	// MigrationPhaseNotComplete: brokers run in migration mode but the
	// /migration znode records no KRaft metadata offset yet (or could not be
	// read): the metadata is not yet copied.
	MigrationPhaseNotComplete MigrationPhase = "migration-not-complete"
	// MigrationPhaseDualWrite: every broker still runs in ZooKeeper mode, in
	// migration mode, and the /migration znode records a KRaft metadata
	// offset above 0: the controllers write to KRaft and ZooKeeper.
	MigrationPhaseDualWrite MigrationPhase = "dual-write"
	// MigrationPhaseKRaftBrokers: some brokers run in KRaft mode, others in
	// ZooKeeper mode (the brokers are being moved to KRaft, the
	// controllers still write to ZooKeeper).
	MigrationPhaseKRaftBrokers MigrationPhase = "kraft-brokers"
	// MigrationPhaseKRaft: every broker runs in KRaft mode. Whether the
	// controllers still write to ZooKeeper (before the point of no return)
	// is not visible through the brokers, which no longer name ZooKeeper.
	MigrationPhaseKRaft MigrationPhase = "kraft"
)

// MigrationStatus is the migration state [Inspect] observed: the phase,
// the brokers in each mode, the KRaft controllers known and what the
// /migration znode in the brokers' ZooKeeper says.
type MigrationStatus struct {
	Phase MigrationPhase `json:"phase"`
	// ZooKeeperBrokers run in ZooKeeper mode without the migration flag,
	// MigrationBrokers in ZooKeeper mode with
	// zookeeper.metadata.migration.enable=true, KRaftBrokers in KRaft mode.
	ZooKeeperBrokers []int32 `json:"zooKeeperBrokers,omitempty"`
	MigrationBrokers []int32 `json:"migrationBrokers,omitempty"`
	KRaftBrokers     []int32 `json:"kraftBrokers,omitempty"`
	// Controllers are the KRaft controllers known.
	Controllers []int32 `json:"controllers,omitempty"`
	// ZNodeRead reports that the /migration znode was read (absent counts
	// as read); ZNodeOffset is its kraft_metadata_offset (-1 absent or not
	// yet copied) and ZNodeController its kraft_controller_id.
	ZNodeRead       bool  `json:"znodeRead"`
	ZNodeOffset     int64 `json:"znodeOffset"`
	ZNodeController int32 `json:"znodeController"`
	// Why says what the phase rests on, and what could not be read.
	Why string `json:"why,omitempty"`
}

// String renders the status as one line.
func (m MigrationStatus) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "migration: %s", m.Phase)
	if m.Why != "" {
		b.WriteString(" (" + m.Why + ")")
	}
	return b.String()
}

// observeMigration reads the /migration znode when the brokers name a
// ZooKeeper and something migrates (controllers known, or a broker in
// migration mode), and sets x.in.Migration.
func (x *inspector) observeMigration(ctx context.Context) {
	var controllers []int32
	for _, n := range x.in.Nodes {
		if slices.Contains(n.Roles, node.RoleController) && !slices.Contains(n.Roles, node.RoleBroker) {
			controllers = append(controllers, n.ID)
		}
	}
	var zn *migrationState
	var znErr error
	migrating := len(controllers) > 0
	for _, n := range x.in.Nodes {
		migrating = migrating || n.Migration
	}
	if migrating && x.zkConnect != "" && len(x.zkModeOf) > 0 {
		ops := &liveOps{cl: x.cl, zk: &zkProbe{timeout: x.cfg.timeout}}
		rctx, cancel := x.round(ctx)
		st, err := ops.migrationState(rctx, x.zkConnect)
		cancel()
		if err != nil {
			znErr = err
			x.in.Unknown = append(x.in.Unknown, "migration: the /migration znode: "+err.Error())
		} else {
			zn = &st
		}
	}
	m := migrationStatus(x.in.Nodes, x.zkModeOf, controllers, zn, znErr)
	x.in.Migration = &m
}

// migrationStatus derives the migration phase from the brokers' modes (true:
// ZooKeeper mode, from their API versions), their migration flags, the
// controllers known and the /migration znode (nil if not read, znErr why).
func migrationStatus(nodes []NodeInfo, zkMode map[int32]bool, controllers []int32, zn *migrationState, znErr error) MigrationStatus {
	m := MigrationStatus{Controllers: controllers, ZNodeOffset: -1, ZNodeController: -1}
	for _, n := range nodes {
		isZK, ok := zkMode[n.ID]
		switch {
		case !ok:
		case !isZK:
			m.KRaftBrokers = append(m.KRaftBrokers, n.ID)
		case n.Migration:
			m.MigrationBrokers = append(m.MigrationBrokers, n.ID)
		default:
			m.ZooKeeperBrokers = append(m.ZooKeeperBrokers, n.ID)
		}
	}
	if zn != nil {
		m.ZNodeRead, m.ZNodeOffset, m.ZNodeController = true, zn.Offset, zn.Controller
	}
	zkBrokers := len(m.ZooKeeperBrokers) + len(m.MigrationBrokers)
	switch {
	case zkBrokers == 0 && len(m.KRaftBrokers) > 0:
		m.Phase = MigrationPhaseKRaft
		m.Why = "every broker runs in KRaft mode"
	case len(m.KRaftBrokers) > 0:
		m.Phase = MigrationPhaseKRaftBrokers
		m.Why = fmt.Sprintf("brokers %v in KRaft mode, %v in ZooKeeper mode", m.KRaftBrokers, append(slices.Clone(m.MigrationBrokers), m.ZooKeeperBrokers...))
	case len(m.MigrationBrokers) > 0:
		switch {
		case zn != nil && zn.Done():
			m.Phase = MigrationPhaseDualWrite
			m.Why = fmt.Sprintf("/migration records KRaft metadata offset %d by controller %d; brokers %v in migration mode", zn.Offset, zn.Controller, m.MigrationBrokers)
		case zn != nil:
			m.Phase = MigrationPhaseNotComplete
			m.Why = fmt.Sprintf("brokers %v in migration mode; /migration records no KRaft metadata offset yet", m.MigrationBrokers)
		default:
			m.Phase = MigrationPhaseNotComplete
			m.Why = fmt.Sprintf("brokers %v in migration mode; whether the metadata is copied is unknown: the /migration znode was not read", m.MigrationBrokers)
			if znErr != nil {
				m.Why += ": " + znErr.Error()
			}
		}
		if len(m.ZooKeeperBrokers) > 0 {
			m.Why += fmt.Sprintf("; brokers %v still without the migration flag", m.ZooKeeperBrokers)
		}
	case len(controllers) > 0:
		m.Phase = MigrationPhaseControllers
		m.Why = fmt.Sprintf("KRaft controllers %v known; no broker in migration mode", controllers)
	default:
		m.Phase = MigrationPhaseZooKeeper
	}
	return m
}
