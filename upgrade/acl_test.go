package upgrade_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/upgrade"
)

// aclStrings renders ACLs without their reasons: what is granted.
func aclStrings(acls []upgrade.ACL) []string {
	var out []string
	for _, a := range acls {
		out = append(out, a.Operation.String()+" "+a.Resource.String()+" "+a.Name)
	}
	return out
}

func TestACLs(t *testing.T) {
	tests := []struct {
		name string
		ops  []upgrade.Operation
		want []string
	}{
		{"none", nil, nil},
		{"unknown operation", []upgrade.Operation{"dance"}, nil},
		{"inspect", []upgrade.Operation{upgrade.OpInspect}, []string{
			"DESCRIBE CLUSTER kafka-cluster", "DESCRIBE_CONFIGS CLUSTER kafka-cluster"}},
		{"finalize", []upgrade.Operation{upgrade.OpFinalize}, []string{
			"ALTER CLUSTER kafka-cluster", "DESCRIBE CLUSTER kafka-cluster"}},
		{"rolling upgrade with finalize, once each", []upgrade.Operation{upgrade.OpInspect, upgrade.OpRollingUpgrade, upgrade.OpFinalize, upgrade.OpInspect}, []string{
			"ALTER CLUSTER kafka-cluster", "DESCRIBE CLUSTER kafka-cluster", "DESCRIBE_CONFIGS CLUSTER kafka-cluster",
			"DESCRIBE TOPIC *", "DESCRIBE_CONFIGS TOPIC *"}},
		{"replace", []upgrade.Operation{upgrade.OpReplace}, []string{
			"ALTER CLUSTER kafka-cluster", "DESCRIBE CLUSTER kafka-cluster", "DESCRIBE_CONFIGS CLUSTER kafka-cluster", "ALTER_CONFIGS CLUSTER kafka-cluster",
			"DESCRIBE TOPIC *", "DESCRIBE_CONFIGS TOPIC *", "ALTER_CONFIGS TOPIC *"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := upgrade.ACLs(tt.ops...)
			if diff := cmp.Diff(tt.want, aclStrings(got)); diff != "" {
				t.Errorf("ACLs(%v) (-want +got):\n%s", tt.ops, diff)
			}
			for _, a := range got {
				if a.Why == "" || a.Pattern != kmsg.ACLResourcePatternTypeLiteral {
					t.Errorf("%v: no reason, or not a literal pattern", a)
				}
			}
		})
	}
}

func TestACLBuilders(t *testing.T) {
	acls := append(upgrade.ACLs(upgrade.OpReplace), upgrade.CanaryACLs("kupgrade-canary")...)
	bs := upgrade.ACLBuilders("User:kupgrade", acls)
	if len(bs) != 3 {
		t.Fatalf("%d builders, want 3 (the cluster, every topic, the canary topic)", len(bs))
	}
	for i, b := range bs {
		if err := b.ValidateCreate(); err != nil {
			t.Errorf("builder %d: %v", i, err)
		}
	}
	if !slices.ContainsFunc(acls, func(a upgrade.ACL) bool {
		return a.Name == "kupgrade-canary" && a.Operation == kmsg.ACLOperationWrite
	}) {
		t.Error("CanaryACLs lacks WRITE on the canary topic")
	}
}
