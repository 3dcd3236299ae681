package upgrade

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kupgrade/kupgrade/compat"
)

// ErrNotMigratable reports a ZooKeeper cluster that Apache Kafka's
// migration to KRaft does not support as it is configured: JBOD brokers
// below inter.broker.protocol.version 3.7-IV2, or brokers with generated
// ids. [NewPlan] refuses such a migration with a *[MigrationRefusal].
var ErrNotMigratable = errors.New("upgrade: the cluster cannot be migrated to KRaft as configured")

// A MigrationRefusal says why [NewPlan] refuses to migrate a cluster: one
// reason per broker at fault. It wraps [ErrNotMigratable] and
// [ErrUnsupportedPlan].
type MigrationRefusal struct {
	Reasons []string
}

// Error lists the reasons.
func (e *MigrationRefusal) Error() string {
	return "upgrade: the cluster cannot be migrated to KRaft: " + strings.Join(e.Reasons, "; ")
}

// Unwrap returns ErrNotMigratable and ErrUnsupportedPlan.
func (e *MigrationRefusal) Unwrap() []error { return []error{ErrNotMigratable, ErrUnsupportedPlan} }

// jbodMigration is the lowest inter.broker.protocol.version with which JBOD
// brokers can be migrated (KIP-858's directory assignment).
const jbodMigration = "3.7-IV2"

// migratable checks, before route's migration hop, the brokers as they will
// be then (cur advanced by the route's hops before it): a broker with more
// than one log directory needs inter.broker.protocol.version 3.7-IV2 or
// later; a broker whose id was generated cannot be migrated. Facts that
// are unknown (zero) refuse nothing.
func migratable(cur compat.State, route compat.RoutePlan) error {
	before := route
	before.Hops = nil
	for _, h := range route.Hops {
		if h.Kind == compat.Migration {
			break
		}
		before.Hops = append(before.Hops, h)
	}
	st := stateAfter(cur, before)
	var why []string
	for _, n := range st.Nodes {
		if !n.IsBroker() {
			continue
		}
		if n.LogDirs > 1 {
			if r := jbodRefusal(n); r != "" {
				why = append(why, r)
			}
		}
		switch {
		case cur.Mode != compat.ModeZooKeeper:
			// Brokers already in KRaft mode report node.id as broker.id,
			// not from server.properties; the ids were checked before.
		case n.BrokerID.Known() && n.BrokerID.Source != compat.SourceStatic:
			why = append(why, fmt.Sprintf("broker %d: broker.id is not set in server.properties (source %s): a generated broker id cannot be migrated (KRaft has none); set broker.id=%d statically and restart the broker first", n.ID, sourceName(n.BrokerID), n.ID))
		case n.ReservedBrokerMaxID > 0 && n.ID > n.ReservedBrokerMaxID:
			why = append(why, fmt.Sprintf("broker %d: its id is above reserved.broker.max.id %d, so it was generated: a generated broker id cannot be migrated (KRaft has none)", n.ID, n.ReservedBrokerMaxID))
		}
	}
	if len(why) > 0 {
		return &MigrationRefusal{Reasons: why}
	}
	return nil
}

// jbodRefusal says why JBOD broker n cannot be migrated with the
// inter.broker.protocol.version it will have, or "" if it can.
func jbodRefusal(n compat.NodeState) string {
	if n.Release.IsZero() {
		return ""
	}
	need, err := compat.ParseMetadataVersion(jbodMigration, n.Release)
	if err != nil {
		return fmt.Sprintf("broker %d uses %d log directories (JBOD) on %v, which cannot migrate JBOD brokers (inter.broker.protocol.version %s, 3.7+, is needed)", n.ID, n.LogDirs, n.Release, jbodMigration)
	}
	var have compat.MetadataVersion
	if n.IBPV.Explicit() {
		have, err = compat.ParseMetadataVersion(n.IBPV.Value, n.Release)
	} else {
		have, err = compat.LatestProduction(n.Release)
	}
	if err != nil || have.Less(need) {
		return fmt.Sprintf("broker %d uses %d log directories (JBOD) with inter.broker.protocol.version %s at the migration: JBOD brokers migrate only from %s", n.ID, n.LogDirs, orDash(n.IBPV.Value), jbodMigration)
	}
	return ""
}

func sourceName(c compat.ConfigValue) string {
	if c.Source == compat.SourceDefault {
		return "default"
	}
	return string(c.Source)
}
