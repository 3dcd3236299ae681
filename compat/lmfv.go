package compat

import (
	"fmt"
)

// log.message.format.version (LMFV) and the topic-level message.format.version
// take the same strings as inter.broker.protocol.version; what matters about
// them is the record format they imply ([MetadataVersion.RecordVersion]).
// They were deprecated in 3.0 (KIP-724), are ignored once the IBPV is 3.0-IV1
// or newer, and were removed in 4.0.

// MessageFormatIgnored reports whether a broker with this
// inter.broker.protocol.version ignores log.message.format.version and
// message.format.version and assumes 3.0 (KIP-724): true from 3.0-IV1 on.
func MessageFormatIgnored(ibpv MetadataVersion) bool {
	return ibpv.AtLeast(messageFormatFixedMV)
}

// DefaultMessageFormat returns the log.message.format.version a broker of rel
// uses when it is not set: the release's [LatestProduction] before 3.0, and
// 3.0-IV1 on 3.x. Releases before 0.10.0 had no such setting and 4.x removed
// it; both return an error wrapping [ErrRemovedConfig].
func DefaultMessageFormat(rel Release) (MetadataVersion, error) {
	l, err := knownOrLine(rel, true)
	if err != nil {
		return MetadataVersion{}, err
	}
	switch {
	case rel.Less(v0(10, 0)):
		return MetadataVersion{}, &MessageFormatError{Reader: rel, Reason: "log.message.format.version was introduced in 0.10.0", Err: ErrRemovedConfig}
	case !l.zooKeeper:
		return MetadataVersion{}, &MessageFormatError{Reader: rel, Reason: "log.message.format.version was removed in 4.0", Err: ErrRemovedConfig}
	case rel.Less(v(3, 0)):
		return mvNamed(l.latest), nil
	default:
		return messageFormatFixedMV, nil
	}
}

// ParseMessageFormat reads a log.message.format.version (or topic-level
// message.format.version) value the way release reader does: with
// [ParseMetadataVersion]'s rules. Readers before 0.10.0 (no such setting
// yet) and from 4.0 on (removed) return an error wrapping
// [ErrRemovedConfig]; other errors are those of ParseMetadataVersion.
func ParseMessageFormat(s string, reader Release) (MetadataVersion, error) {
	l, err := knownOrLine(reader, true)
	if err != nil {
		return MetadataVersion{}, err
	}
	switch {
	case reader.Less(v0(10, 0)):
		return MetadataVersion{}, &MessageFormatError{Reader: reader, Reason: "log.message.format.version was introduced in 0.10.0", Err: ErrRemovedConfig}
	case !l.zooKeeper:
		return MetadataVersion{}, &MessageFormatError{Reader: reader, Reason: "log.message.format.version was removed in 4.0", Err: ErrRemovedConfig}
	}
	return ParseMetadataVersion(s, reader)
}

// CheckMessageFormat reports whether a broker of release reader starts with
// this inter.broker.protocol.version and log.message.format.version. It
// applies the rule of that release: before 1.1 the IBPV must be at least the
// LMFV; from 1.1 on, the IBPV's record format must be at least the LMFV's
// (so 0.10.2 with an LMFV of 0.10.0 works, but not 0.10.2 with 0.11.0). From
// IBPV 3.0-IV1 on the LMFV is ignored and any value passes. Errors are
// *[MessageFormatError]s wrapping [ErrInvalidMessageFormat], or
// [ErrRemovedConfig] for 4.x readers.
func CheckMessageFormat(ibpv, lmfv MetadataVersion, reader Release) error {
	l, err := knownOrLine(reader, true)
	if err != nil {
		return err
	}
	bad := func(reason string, err error) error {
		return &MessageFormatError{IBPV: ibpv, LMFV: lmfv, Reader: reader, Reason: reason, Err: err}
	}
	switch {
	case !l.zooKeeper:
		return bad("log.message.format.version was removed in 4.0; remove it", ErrRemovedConfig)
	case MessageFormatIgnored(ibpv):
		return nil
	case reader.Less(v(1, 1)):
		if ibpv.Less(lmfv) {
			return bad(fmt.Sprintf("%v cannot be used when inter.broker.protocol.version is %v (before 1.1 the IBPV must be at least the message format)", lmfv, ibpv), ErrInvalidMessageFormat)
		}
	default:
		if ibpv.RecordVersion() < lmfv.RecordVersion() {
			return bad(fmt.Sprintf("record format v%d needs inter.broker.protocol.version %v or newer", lmfv.RecordVersion(), minForRecordVersion(lmfv.RecordVersion())), ErrInvalidMessageFormat)
		}
	}
	return nil
}

func minForRecordVersion(rv int) MetadataVersion {
	switch rv {
	case 0:
		return mvNamed("0.8.0")
	case 1:
		return mvNamed("0.10.0-IV0")
	default:
		return mvNamed("0.11.0-IV0")
	}
}

// A MessageFormatAdvice says what a ZooKeeper-mode rolling upgrade must do
// about log.message.format.version, following Kafka's upgrade notes and
// KIP-724.
type MessageFormatAdvice struct {
	// Pin is the value to set while the new binaries roll out, so that the
	// brokers keep writing the current format; empty if no pin is needed.
	Pin string `json:"pin,omitempty"`
	// Clear is true when the setting should be removed in the roll that
	// raises inter.broker.protocol.version to 3.0-IV1 or newer, which
	// ignores it.
	Clear bool `json:"clear,omitempty"`
	// ThirdRoll is true when the format stays pinned after the IBPV raise
	// (target below 3.0) and an optional third roll moves it to the new
	// version once consumers can read it.
	ThirdRoll bool `json:"thirdRoll,omitempty"`
	// ThirdRollValue is the value for that roll; empty means "remove the
	// setting and follow the default".
	ThirdRollValue string `json:"thirdRollValue,omitempty"`
	// Reason explains the advice in a sentence.
	Reason string `json:"reason"`
}

// AdviseMessageFormat says whether a ZooKeeper-mode upgrade of s to release
// to must pin log.message.format.version during the roll, and what to do
// with it afterwards. A pin is needed when the setting is overridden on any
// broker, when the cluster still writes a pre-0.11 record format, or when the
// new release's default would not start next to the pinned
// inter.broker.protocol.version. Nothing is pinned once the IBPV is 3.0-IV1
// or newer.
func AdviseMessageFormat(s State, to Release) (MessageFormatAdvice, error) {
	if err := s.Validate(); err != nil {
		return MessageFormatAdvice{}, err
	}
	c, err := newSim(s)
	if err != nil {
		return MessageFormatAdvice{}, err
	}
	if _, err := knownOrLine(to, true); err != nil {
		return MessageFormatAdvice{}, err
	}
	pin, _, err := c.clusterIBPV()
	if err != nil {
		return MessageFormatAdvice{}, err
	}
	return c.adviseLMFV(pin, to)
}

// adviseLMFV computes the advice for a roll to release to with the IBPV
// pinned at pin.
func (c *sim) adviseLMFV(pin MetadataVersion, to Release) (MessageFormatAdvice, error) {
	explicit := false
	for _, n := range c.nodes {
		if n.lmfvSet() {
			explicit = true
		}
	}
	target, err := LatestProduction(to)
	if err != nil {
		return MessageFormatAdvice{}, err
	}
	if to.Less(v0(10, 0)) {
		return MessageFormatAdvice{Reason: "log.message.format.version arrived in 0.10.0"}, nil
	}
	if MessageFormatIgnored(pin) {
		if explicit {
			return MessageFormatAdvice{Clear: true, Reason: "log.message.format.version is ignored from inter.broker.protocol.version 3.0-IV1 on (KIP-724) and removed in 4.0; remove it"}, nil
		}
		return MessageFormatAdvice{Reason: "log.message.format.version is ignored from inter.broker.protocol.version 3.0-IV1 on (KIP-724)"}, nil
	}
	cur, err := c.clusterLMFV()
	if err != nil {
		return MessageFormatAdvice{}, err
	}
	if CheckMessageFormat(pin, cur, to) != nil {
		// The lowest format in use does not fit the pinned protocol (some
		// broker runs a newer protocol than the pin): keep the format the
		// pinned protocol writes.
		cur = pin
	}
	var adv MessageFormatAdvice
	newDefault, derr := DefaultMessageFormat(to)
	startsWithDefault := derr == nil && CheckMessageFormat(pin, newDefault, to) == nil
	switch {
	case explicit:
		adv.Pin = cur.Name
		adv.Reason = fmt.Sprintf("log.message.format.version is overridden; keep it at %v while rolling", cur)
	case cur.RecordVersion() < 2:
		adv.Pin = cur.Name
		adv.Reason = fmt.Sprintf("the cluster writes record format v%d (from before 0.11.0); pin log.message.format.version=%v while rolling", cur.RecordVersion(), cur)
	case !startsWithDefault:
		adv.Pin = cur.Name
		adv.Reason = fmt.Sprintf("%v's default log.message.format.version does not start next to inter.broker.protocol.version %v; pin it at %v", to.Short(), pin, cur)
	default:
		adv.Reason = "log.message.format.version is not overridden and the new default fits the pinned inter.broker.protocol.version; no pin needed"
		return adv, nil
	}
	if MessageFormatIgnored(target) {
		adv.Clear = true
		adv.Reason += fmt.Sprintf("; remove it when raising inter.broker.protocol.version to %v, which ignores it (KIP-724)", target)
		return adv, nil
	}
	adv.ThirdRoll = true
	if explicit {
		adv.ThirdRollValue = target.Name
	}
	adv.Reason += fmt.Sprintf("; after raising inter.broker.protocol.version to %v, an optional third roll moves the format on once consumers read it", target)
	return adv, nil
}
