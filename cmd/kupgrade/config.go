package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kupgrade/kupgrade/node"
	"github.com/kupgrade/kupgrade/node/shellnode"
)

// config is the connection and orchestration file (-config). Relative paths
// in it are relative to the file's directory. Secrets are never in it: a
// SASL password comes from a file or an environment variable.
type config struct {
	Seeds       []string           `json:"seeds"`
	Controllers []string           `json:"controllers,omitempty"`
	TLS         *tlsConfig         `json:"tls,omitempty"`
	SASL        *saslConfig        `json:"sasl,omitempty"`
	Nodes       []node.Node        `json:"nodes,omitempty"`
	Commands    shellnode.Commands `json:"commands"`
	Timeouts    timeouts           `json:"timeouts"`

	dir string // the config file's directory
}

type tlsConfig struct {
	CA         string `json:"ca,omitempty"`
	Cert       string `json:"cert,omitempty"`
	Key        string `json:"key,omitempty"`
	ServerName string `json:"server_name,omitempty"`
}

type saslConfig struct {
	Mechanism    string  `json:"mechanism"`
	Username     string  `json:"username"`
	PasswordFile string  `json:"password_file,omitempty"`
	PasswordEnv  string  `json:"password_env,omitempty"`
	Password     *string `json:"password,omitempty"` // refused: never a secret in the file
}

type timeouts struct {
	Restart duration `json:"restart,omitzero"`
	Alive   duration `json:"alive,omitzero"`
	Nodes   duration `json:"nodes,omitzero"`
}

// duration is a time.Duration written as "10m" in JSON.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"10m\", not %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v <= 0 {
		return fmt.Errorf("duration %q is not positive", s)
	}
	*d = duration(v)
	return nil
}

// loadConfig reads and checks the config file at path.
func loadConfig(path string) (*config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c config
	if err := dec.Decode(&c); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := bytes.Count(b[:se.Offset], []byte("\n")) + 1
			return nil, fmt.Errorf("config %s: line %d: %w", path, line, err)
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.dir = filepath.Dir(path)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

func (c *config) validate() error {
	if len(c.Seeds) == 0 {
		return errors.New(`"seeds" is empty: list at least one broker address, host:port`)
	}
	for _, s := range append(append([]string{}, c.Seeds...), c.Controllers...) {
		if !strings.Contains(s, ":") {
			return fmt.Errorf("address %q has no port (want host:port)", s)
		}
	}
	if t := c.TLS; t != nil && (t.Cert == "") != (t.Key == "") {
		return errors.New(`"tls": "cert" and "key" go together`)
	}
	if s := c.SASL; s != nil {
		switch {
		case s.Password != nil:
			return errors.New(`"sasl": "password" is not accepted (a secret in a file others read); use "password_file" or "password_env"`)
		case s.Username == "":
			return errors.New(`"sasl": "username" is empty`)
		case (s.PasswordFile == "") == (s.PasswordEnv == ""):
			return errors.New(`"sasl": set exactly one of "password_file" and "password_env"`)
		}
		switch strings.ToUpper(s.Mechanism) {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return fmt.Errorf(`"sasl": mechanism %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`, s.Mechanism)
		}
	}
	return nil
}

// path resolves p against the config file's directory.
func (c *config) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// clientOpts are the franz-go options for the connection the file
// describes; files and environment are read here, so a missing password
// file fails before any connection.
func (c *config) clientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Seeds...)}
	if t := c.TLS; t != nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
		if t.CA != "" {
			pem, err := os.ReadFile(c.path(t.CA))
			if err != nil {
				return nil, fmt.Errorf("tls ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls ca %s: no PEM certificate in it", t.CA)
			}
		}
		if t.Cert != "" {
			cert, err := tls.LoadX509KeyPair(c.path(t.Cert), c.path(t.Key))
			if err != nil {
				return nil, fmt.Errorf("tls cert/key: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if s := c.SASL; s != nil {
		pw, err := s.password(c)
		if err != nil {
			return nil, err
		}
		var m sasl.Mechanism
		switch strings.ToUpper(s.Mechanism) {
		case "PLAIN":
			m = plain.Auth{User: s.Username, Pass: pw}.AsMechanism()
		case "SCRAM-SHA-256":
			m = scram.Auth{User: s.Username, Pass: pw}.AsSha256Mechanism()
		case "SCRAM-SHA-512":
			m = scram.Auth{User: s.Username, Pass: pw}.AsSha512Mechanism()
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// password reads the SASL password; errors name where it was looked for,
// never what was found.
func (s *saslConfig) password(c *config) (string, error) {
	if s.PasswordEnv != "" {
		pw, ok := os.LookupEnv(s.PasswordEnv)
		if !ok || pw == "" {
			return "", fmt.Errorf("sasl: environment variable %s (password_env) is not set", s.PasswordEnv)
		}
		return pw, nil
	}
	b, err := os.ReadFile(c.path(s.PasswordFile))
	if err != nil {
		return "", fmt.Errorf("sasl password_file: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("sasl password_file %s is empty", s.PasswordFile)
	}
	return pw, nil
}

// orchestrator is the shell orchestrator the file describes, or nil if it
// has no commands (inspect and plan work without; releases stay unknown
// unless nodes list them).
func (c *config) orchestrator() (node.Orchestrator, error) {
	if c.Commands.Restart == "" && c.Commands.Alive == "" && c.Commands.Nodes == "" {
		if len(c.Nodes) == 0 {
			return nil, nil
		}
		return staticNodes(c.Nodes), nil
	}
	opts := []shellnode.ShellOption{shellnode.StaticNodes(c.Nodes...)}
	if c.Timeouts.Restart > 0 {
		opts = append(opts, shellnode.RestartCommandTimeout(time.Duration(c.Timeouts.Restart)))
	}
	if c.Timeouts.Alive > 0 {
		opts = append(opts, shellnode.AliveCommandTimeout(time.Duration(c.Timeouts.Alive)))
	}
	if c.Timeouts.Nodes > 0 {
		opts = append(opts, shellnode.NodesCommandTimeout(time.Duration(c.Timeouts.Nodes)))
	}
	o, err := shellnode.NewShell(c.Commands, opts...)
	if err != nil {
		return nil, fmt.Errorf("config: commands: %w", err)
	}
	return o, nil
}

// staticNodes answers Nodes from the config file's list and refuses to
// restart anything: a config without a restart command can inspect and plan.
type staticNodes []node.Node

func (s staticNodes) Nodes(ctx context.Context) ([]node.Node, error) { return s, nil }

func (s staticNodes) Restart(ctx context.Context, id int32, ch node.Change) error {
	return errors.New(`config: "commands": "restart" is not set`)
}
