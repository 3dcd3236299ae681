package kafkatest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kupgrade/kupgrade/compat"
)

// A Mechanism is a SASL mechanism a secured cluster accepts.
type Mechanism string

// The SASL mechanisms of a secured cluster.
const (
	// SCRAMSHA512 users are created with AlterUserScramCredentials once the
	// cluster runs (their credentials live in the cluster's metadata).
	SCRAMSHA512 Mechanism = "SCRAM-SHA-512"
	// Plain users are listed in the listeners' JAAS config.
	Plain Mechanism = "PLAIN"
)

// A User is a SASL user of a secured cluster. Its principal is "User:" + Name.
type User struct {
	Name      string
	Password  string
	Mechanism Mechanism
}

// Principal returns the user's Kafka principal, "User:" + Name.
func (u User) Principal() string { return "User:" + u.Name }

// String names the user and mechanism, never the password.
func (u User) String() string { return u.Name + " (" + string(u.Mechanism) + ")" }

// Secure makes every listener of the cluster SASL_SSL: the client listeners,
// the inter-broker listener and, in KRaft mode, the controller listener. At
// start kafkatest makes a certificate authority and a certificate per node
// (ECDSA P-256, for 127.0.0.1 and localhost) with crypto/x509 and hands them
// to Kafka as inline PEM (ssl.keystore.type=PEM). Brokers authenticate to
// each other and to the controllers with SASL PLAIN as the super user
// "broker"; the super user "admin" (PLAIN) is what [Cluster.NewClient] and
// kafkatest's own clients use. Both get random passwords. Authorization is
// on (StandardAuthorizer in KRaft mode, AclAuthorizer in ZooKeeper mode) and
// denies whatever no ACL allows; grant with [Security.Grant].
//
// users are further users: [Plain] ones go into the JAAS config,
// [SCRAMSHA512] ones are created once the cluster runs, and New returns
// only once every broker accepts them. See [Cluster.Security].
func Secure(users ...User) Option {
	return optionFunc(func(c *config) {
		if c.secure == nil {
			c.secure = &secureConfig{}
		}
		c.secure.users = append(c.secure.users, users...)
	})
}

// secureConfig is what [Secure] asked for.
type secureConfig struct {
	users []User
}

// Security is the security setup of a cluster started with [Secure]: its
// certificate authority and users. Its methods are safe for concurrent use.
type Security struct {
	mode    compat.Mode
	caPEM   []byte
	caCert  *x509.Certificate
	caKey   *ecdsa.PrivateKey
	pool    *x509.CertPool
	broker  User
	admin   User
	users   []User
	mu      sync.Mutex
	nodePEM map[int32][2]string // node id → certificate chain, key (PEM)
}

func newSecurity(mode compat.Mode, sc *secureConfig) (*Security, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "kafkatest CA", Organization: []string{"kupgrade kafkatest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: CA certificate: %w", err)
	}
	s := &Security{mode: mode, caCert: cert, caKey: key, pool: x509.NewCertPool(), nodePEM: map[int32][2]string{},
		caPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		broker: User{Name: "broker", Password: randomSecret(), Mechanism: Plain},
		admin:  User{Name: "admin", Password: randomSecret(), Mechanism: Plain},
	}
	s.pool.AddCert(cert)
	seen := map[string]bool{"broker": true, "admin": true}
	for _, u := range sc.users {
		switch {
		case u.Name == "" || strings.ContainsAny(u.Name, "\"=,; \\\n"):
			return nil, fmt.Errorf("kafkatest: Secure: user name %q is empty or has a character JAAS or SCRAM cannot carry", u.Name)
		case seen[u.Name]:
			return nil, fmt.Errorf("kafkatest: Secure: user %q twice (broker and admin are kafkatest's own)", u.Name)
		case u.Password == "" || strings.ContainsAny(u.Password, "\"\\\n"):
			return nil, fmt.Errorf("kafkatest: Secure: user %s: the password is empty or has a quote, backslash or newline", u.Name)
		case u.Mechanism != Plain && u.Mechanism != SCRAMSHA512:
			return nil, fmt.Errorf("kafkatest: Secure: user %s: mechanism %q is neither PLAIN nor SCRAM-SHA-512", u.Name, u.Mechanism)
		}
		seen[u.Name] = true
		s.users = append(s.users, u)
	}
	return s, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// randomSecret is a random password of 32 hex digits.
func randomSecret() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// nodeCert returns node id's certificate chain and private key (PEM),
// made on first use.
func (s *Security) nodeCert(id int32) (chain, key string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.nodePEM[id]; ok {
		return p[0], p[1], nil
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("kafkatest node %d", id), Organization: []string{"kupgrade kafkatest"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost", nodeAlias(id)}, // the alias: bridge networking (see Containers)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.caCert, &k.PublicKey, s.caKey)
	if err != nil {
		return "", "", err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", "", err
	}
	chain = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + string(s.caPEM)
	key = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}))
	s.nodePEM[id] = [2]string{chain, key}
	return chain, key, nil
}

// CAPEM returns the certificate authority's certificate (PEM) that signed
// every node's certificate: what a client trusts.
func (s *Security) CAPEM() []byte { return slices.Clone(s.caPEM) }

// TLSConfig returns a TLS client config that trusts the cluster's CA only.
func (s *Security) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}
}

// Admin returns the super user "admin" (PLAIN) that kafkatest's own clients use.
func (s *Security) Admin() User { return s.admin }

// Users returns the users given to [Secure].
func (s *Security) Users() []User { return slices.Clone(s.users) }

// User returns the user of that name given to [Secure] (or admin).
func (s *Security) User(name string) (User, bool) {
	if name == s.admin.Name {
		return s.admin, true
	}
	for _, u := range s.users {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

// ClientOpts returns the franz-go options that connect as u: TLS trusting
// the cluster's CA and SASL with u's mechanism.
func (s *Security) ClientOpts(u User) []kgo.Opt {
	opts := []kgo.Opt{kgo.DialTLSConfig(s.TLSConfig())}
	switch u.Mechanism {
	case SCRAMSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: u.Name, Pass: u.Password}.AsSha512Mechanism()))
	default:
		opts = append(opts, kgo.SASL(plain.Auth{User: u.Name, Pass: u.Password}.AsMechanism()))
	}
	return opts
}

// Secrets returns every secret of the setup: passwords, the private keys
// (PEM and their base64 body lines) and the JAAS values, for tests that
// prove none of them leaks into output.
func (s *Security) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []string{s.broker.Password, s.admin.Password, s.plainJAAS(s.broker)}
	for _, u := range s.users {
		out = append(out, u.Password)
	}
	for _, p := range s.nodePEM {
		out = append(out, p[1])
		for l := range strings.SplitSeq(p[1], "\n") {
			if len(l) >= 32 && !strings.HasPrefix(l, "-----") {
				out = append(out, l)
			}
		}
	}
	return out
}

// plainJAAS is the PLAIN login module line of a listener: who the node
// logs in as (self) and every PLAIN user it accepts.
func (s *Security) plainJAAS(self User) string {
	var b strings.Builder
	fmt.Fprintf(&b, `org.apache.kafka.common.security.plain.PlainLoginModule required username="%s" password="%s"`, self.Name, self.Password)
	for _, u := range append([]User{s.broker, s.admin}, s.users...) {
		if u.Mechanism == Plain {
			fmt.Fprintf(&b, ` user_%s="%s"`, u.Name, u.Password)
		}
	}
	b.WriteString(";")
	return b.String()
}

// secureListenerName is the name (and protocol) of the brokers' listener.
const secureListenerName = "SASL_SSL"

// applySecurity rewrites a node's base config for a secured cluster: every
// listener SASL_SSL, PEM key and trust stores inline, JAAS per listener,
// the authorizer and the super users.
func (c *Cluster) applySecurity(n *Process, cfg map[string]string) {
	s := c.security
	chain, key, err := s.nodeCert(n.id)
	if err != nil { // crypto/rand does not fail on Linux; a node without keys would not start
		c.cfg.logger.Error("kafkatest: node certificate", "node", n.id, "err", err)
	}
	cfg["ssl.keystore.type"] = "PEM"
	cfg["ssl.keystore.certificate.chain"] = chain
	cfg["ssl.keystore.key"] = key
	cfg["ssl.truststore.type"] = "PEM"
	cfg["ssl.truststore.certificates"] = string(s.caPEM)
	cfg["ssl.client.auth"] = "none"
	cfg["sasl.enabled.mechanisms"] = string(Plain) + "," + string(SCRAMSHA512)
	cfg["sasl.mechanism.inter.broker.protocol"] = string(Plain)
	cfg["super.users"] = s.broker.Principal() + ";" + s.admin.Principal()
	cfg["allow.everyone.if.no.acl.found"] = "false"
	listenerJAAS := func(listener string) {
		l := strings.ToLower(listener)
		cfg["listener.name."+l+".plain.sasl.jaas.config"] = s.plainJAAS(s.broker)
		cfg["listener.name."+l+".scram-sha-512.sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
	}
	listenerJAAS(secureListenerName)
	if c.cfg.mode == compat.ModeZooKeeper {
		cfg["listeners"] = secureListenerName + "://" + n.Addr()
		cfg["security.inter.broker.protocol"] = secureListenerName
		cfg["authorizer.class.name"] = "kafka.security.authorizer.AclAuthorizer"
		return
	}
	listenerJAAS("CONTROLLER") // brokers read it to reach the controllers, too
	var listeners []string
	if n.IsBroker() {
		listeners = append(listeners, secureListenerName+"://"+n.Addr())
		cfg["inter.broker.listener.name"] = secureListenerName
	}
	if n.IsController() {
		listeners = append(listeners, "CONTROLLER://"+n.ControllerAddr())
	}
	cfg["listeners"] = strings.Join(listeners, ",")
	cfg["listener.security.protocol.map"] = "CONTROLLER:SASL_SSL," + secureListenerName + ":SASL_SSL"
	cfg["sasl.mechanism.controller.protocol"] = string(Plain)
	cfg["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
}

// Security returns the cluster's security setup, or nil if it was not
// started with [Secure].
func (c *Cluster) Security() *Security { return c.security }

// clientSecurity returns the options kafkatest's own clients connect with:
// none for a plaintext cluster, TLS and SASL as admin for a secured one.
func (c *Cluster) clientSecurity() []kgo.Opt {
	if c.security == nil {
		return nil
	}
	return c.security.ClientOpts(c.security.admin)
}

// UserClient returns a client of the cluster's brokers that connects as the
// user of that name (see [Secure]), closed when the test ends. It fails the
// test if the cluster is not secured or has no such user.
func (c *Cluster) UserClient(t testing.TB, name string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	if c.security == nil {
		t.Fatalf("kafkatest: UserClient(%q): the cluster was not started with Secure", name)
	}
	u, ok := c.security.User(name)
	if !ok {
		t.Fatalf("kafkatest: UserClient(%q): no such user", name)
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs()...)}, c.security.ClientOpts(u)...), opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: client as %s: %v", name, err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createSCRAMUsers creates the SCRAM users (as admin) and waits until every
// running broker accepts each of them.
func (c *Cluster) createSCRAMUsers(ctx context.Context) error {
	s := c.security
	var up []kadm.UpsertSCRAM
	var users []User
	for _, u := range s.users {
		if u.Mechanism == SCRAMSHA512 {
			up = append(up, kadm.UpsertSCRAM{User: u.Name, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: u.Password})
			users = append(users, u)
		}
	}
	if len(up) == 0 {
		return nil
	}
	cl, err := c.NewClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.startTimeout, fmt.Errorf("kafkatest: SCRAM users not accepted by every broker within %v", c.cfg.startTimeout))
	defer cancel()
	err = poll(ctx, nil, func(ctx context.Context) error {
		res, err := kadm.NewClient(cl).AlterUserSCRAMs(ctx, nil, up)
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Err != nil {
				return fmt.Errorf("user %s: %w %s", r.User, r.Err, r.ErrMessage)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kafkatest: create SCRAM users: %w", err)
	}
	for _, n := range c.list() {
		if !n.IsBroker() || n.Status() != Running {
			continue
		}
		for _, u := range users {
			err := poll(ctx, nil, func(ctx context.Context) error {
				return answersAPIVersions(ctx, n.Addr(), s.ClientOpts(u)...)
			})
			if err != nil {
				return fmt.Errorf("kafkatest: broker %d does not accept SCRAM user %s: %w", n.id, u.Name, err)
			}
		}
	}
	return nil
}

// A Permission (an ACL) allows a principal one operation on one resource (a literal name,
// or "*" for every resource of the type; the cluster resource is named
// "kafka-cluster"), from any host.
type Permission struct {
	Principal string
	Resource  kmsg.ACLResourceType
	Name      string
	// Prefixed makes Name a prefix instead of a literal name.
	Prefixed  bool
	Operation kmsg.ACLOperation
}

// String reads "User:alice ALLOW DESCRIBE on TOPIC orders".
func (a Permission) String() string {
	name := a.Name
	if a.Prefixed {
		name += "* (prefix)"
	}
	return fmt.Sprintf("%s ALLOW %v on %v %s", a.Principal, a.Operation, a.Resource, name)
}

// Grant creates ACLs (as admin), then waits until every broker has them: a
// broker's authorizer learns of new ACLs a moment after the create returns.
// It is the caller's way to give the users of [Secure] what they may do.
func (s *Security) Grant(ctx context.Context, c *Cluster, acls ...Permission) error {
	return s.alterACLs(ctx, c, acls, true)
}

// Revoke deletes ACLs made with [Security.Grant] (as admin) and waits until
// no broker lists them.
func (s *Security) Revoke(ctx context.Context, c *Cluster, acls ...Permission) error {
	return s.alterACLs(ctx, c, acls, false)
}

func (s *Security) alterACLs(ctx context.Context, c *Cluster, acls []Permission, create bool) error {
	if len(acls) == 0 {
		return nil
	}
	if c.security != s {
		return errors.New("kafkatest: Grant: the Security is not this cluster's")
	}
	cl, err := c.NewClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	pattern := func(a Permission) kmsg.ACLResourcePatternType {
		if a.Prefixed {
			return kmsg.ACLResourcePatternTypePrefixed
		}
		return kmsg.ACLResourcePatternTypeLiteral
	}
	if create {
		req := kmsg.NewPtrCreateACLsRequest()
		for _, a := range acls {
			cr := kmsg.NewCreateACLsRequestCreation()
			cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = a.Resource, a.Name, pattern(a)
			cr.Principal, cr.Host, cr.Operation, cr.PermissionType = a.Principal, "*", a.Operation, kmsg.ACLPermissionTypeAllow
			req.Creations = append(req.Creations, cr)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("kafkatest: create ACLs: %w", err)
		}
		for i, r := range resp.Results {
			if err := kerrFor(r.ErrorCode, r.ErrorMessage); err != nil {
				return fmt.Errorf("kafkatest: create ACL %v: %w", acls[i], err)
			}
		}
	} else {
		req := kmsg.NewPtrDeleteACLsRequest()
		for _, a := range acls {
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourceName, f.ResourcePatternType = a.Resource, kmsg.StringPtr(a.Name), pattern(a)
			f.Principal, f.Host, f.Operation, f.PermissionType = kmsg.StringPtr(a.Principal), kmsg.StringPtr("*"), a.Operation, kmsg.ACLPermissionTypeAllow
			req.Filters = append(req.Filters, f)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("kafkatest: delete ACLs: %w", err)
		}
		for i, r := range resp.Results {
			if err := kerrFor(r.ErrorCode, r.ErrorMessage); err != nil {
				return fmt.Errorf("kafkatest: delete ACL %v: %w", acls[i], err)
			}
		}
	}
	wctx, cancel := context.WithTimeoutCause(ctx, time.Minute, errors.New("kafkatest: ACL change not seen by every broker within 1m"))
	defer cancel()
	for _, n := range c.list() {
		if !n.IsBroker() || n.Status() != Running {
			continue
		}
		err := poll(wctx, nil, func(ctx context.Context) error {
			got, err := describeACLsOn(ctx, n.Addr(), c.clientSecurity())
			if err != nil {
				return err
			}
			for _, a := range acls {
				if got[a.key()] != create {
					return fmt.Errorf("broker %d: ACL %v not yet %s", n.id, a, map[bool]string{true: "present", false: "gone"}[create])
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("kafkatest: %w", err)
		}
	}
	return nil
}

func (a Permission) key() string {
	return fmt.Sprintf("%s|%d|%s|%v|%d", a.Principal, a.Resource, a.Name, a.Prefixed, a.Operation)
}

// describeACLsOn lists the allow ACLs one broker knows.
func describeACLsOn(ctx context.Context, addr string, opts []kgo.Opt) (map[string]bool, error) {
	cl, err := oneShotClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType = kmsg.ACLResourceTypeAny
	req.ResourcePatternType = kmsg.ACLResourcePatternTypeAny
	req.Operation = kmsg.ACLOperationAny
	req.PermissionType = kmsg.ACLPermissionTypeAny
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return nil, err
	}
	if err := kerrFor(resp.ErrorCode, resp.ErrorMessage); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, r := range resp.Resources {
		for _, a := range r.ACLs {
			if a.PermissionType != kmsg.ACLPermissionTypeAllow {
				continue
			}
			k := Permission{Principal: a.Principal, Resource: r.ResourceType, Name: r.ResourceName,
				Prefixed: r.ResourcePatternType == kmsg.ACLResourcePatternTypePrefixed, Operation: a.Operation}.key()
			out[k] = true
		}
	}
	return out, nil
}

// kerrFor is Kafka's error for code with its message, nil for no error.
func kerrFor(code int16, msg *string) error {
	err := kerr.ErrorForCode(code)
	if err == nil || msg == nil || *msg == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, *msg)
}
