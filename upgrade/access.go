package upgrade

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kupgrade/kupgrade/health"
	"github.com/kupgrade/kupgrade/kraft"
)

// ErrUnauthenticated reports that the cluster refused the client's
// credentials: a wrong password or unknown user (SASL), a SASL mechanism the
// listener does not enable, or a certificate the client does not trust.
// Waiting does not help, so kupgrade stops at once; it is not
// [ErrUnreachable].
var ErrUnauthenticated = errors.New("upgrade: the cluster refused the client's credentials")

// ErrDenied reports that the client's principal lacks an ACL kupgrade needs.
// The error is a *[DeniedError] naming it; [ACLs] lists them all.
var ErrDenied = errors.New("upgrade: the client's principal lacks an ACL")

// A DeniedError reports a request Kafka refused for want of an ACL. kupgrade
// stops at once instead of waiting for a gate's timeout. It unwraps to
// [ErrDenied] and to Kafka's error ([kerr.TopicAuthorizationFailed], …).
type DeniedError struct {
	// During says what kupgrade was doing ("restarting node 4 is not safe").
	During string
	// Operation is the ACL operation missing, [kmsg.ACLOperationUnknown]
	// when Kafka's answer does not tell which (then see [ACLs]).
	Operation kmsg.ACLOperation
	// Resource and Name are the resource it is missing on: a topic's name,
	// "kafka-cluster" for the cluster, "" when Kafka's answer does not say.
	Resource kmsg.ACLResourceType
	Name     string
	// Err is Kafka's error.
	Err error
}

// Error names the missing ACL and what needed it.
func (e *DeniedError) Error() string {
	op := "an ACL"
	if e.Operation != kmsg.ACLOperationUnknown {
		op = e.Operation.String()
	}
	res := e.Resource.String()
	if e.Name != "" {
		res += " " + e.Name
	}
	during := ""
	if e.During != "" {
		during = e.During + ": "
	}
	return fmt.Sprintf("upgrade: %sdenied: the client's principal needs ALLOW %s on %s (%v); grant upgrade.ACLs of the operation", during, op, res, e.Err)
}

// Unwrap returns [ErrDenied] and Kafka's error.
func (e *DeniedError) Unwrap() []error { return []error{ErrDenied, e.Err} }

// authentication reports whether err is a refusal of the client's
// credentials (SASL or TLS).
func authentication(err error) bool {
	if errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) || errors.Is(err, kerr.UnsupportedSaslMechanism) {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	_, ok := errors.AsType[*tls.CertificateVerificationError](err)
	return ok
}

// deniedResource maps Kafka's authorization error codes to their resource.
var deniedResource = map[int16]kmsg.ACLResourceType{
	kerr.TopicAuthorizationFailed.Code:           kmsg.ACLResourceTypeTopic,
	kerr.GroupAuthorizationFailed.Code:           kmsg.ACLResourceTypeGroup,
	kerr.ClusterAuthorizationFailed.Code:         kmsg.ACLResourceTypeCluster,
	kerr.TransactionalIDAuthorizationFailed.Code: kmsg.ACLResourceTypeTransactionalId,
	kerr.DelegationTokenAuthorizationFailed.Code: kmsg.ACLResourceTypeDelegationToken,
}

// accessError classifies err: an authentication failure wraps
// [ErrUnauthenticated]; a missing ACL becomes a *[DeniedError]; anything
// else is nil. during says what kupgrade was doing ("" when the caller
// adds it).
func accessError(during string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*DeniedError](err); ok {
		return err
	}
	if errors.Is(err, ErrUnauthenticated) {
		return err
	}
	if authentication(err) {
		if during == "" {
			return fmt.Errorf("%w: %w", ErrUnauthenticated, err)
		}
		return fmt.Errorf("%w: %s: %w", ErrUnauthenticated, during, err)
	}
	if ue, ok := errors.AsType[*kraft.UpdateError](err); ok && errors.Is(err, kraft.ErrNotAuthorized) {
		return &DeniedError{During: during, Operation: kmsg.ACLOperationAlter, Resource: kmsg.ACLResourceTypeCluster, Name: clusterName, Err: ue}
	}
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		if res, ok := deniedResource[ke.Code]; ok {
			de := &DeniedError{During: during, Resource: res, Err: err}
			if res == kmsg.ACLResourceTypeCluster {
				de.Name = clusterName
			}
			return de
		}
	}
	return nil
}

// deniedIn finds the first topic of a snapshot whose min.insync.replicas
// Kafka refused to describe (health records the refusal as Kafka's error
// text): a gate would refuse every restart of its replicas until its
// timeout, and waiting cannot fix an ACL.
func deniedIn(during string, snap health.Snapshot) error {
	for _, t := range snap.Topics {
		if strings.HasPrefix(t.MinISRError, kerr.TopicAuthorizationFailed.Message) {
			return &DeniedError{During: during, Operation: kmsg.ACLOperationDescribeConfigs, Resource: kmsg.ACLResourceTypeTopic,
				Name: t.Name, Err: kerr.TopicAuthorizationFailed}
		}
		if t.ErrorCode == kerr.TopicAuthorizationFailed.Code {
			return &DeniedError{During: during, Operation: kmsg.ACLOperationDescribe, Resource: kmsg.ACLResourceTypeTopic,
				Name: t.Name, Err: kerr.TopicAuthorizationFailed}
		}
	}
	return nil
}
