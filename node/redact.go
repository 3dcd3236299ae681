package node

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
)

// Redacted is what kupgrade renders in place of a secret config value (see
// [SecretKey]) in plan tables, step descriptions, events, errors and logs.
const Redacted = "REDACTED"

// SecretKey reports whether a config key's value is secret, so that it must
// never be rendered: passwords (ssl.keystore.password, ssl.key.password, …),
// JAAS configs (sasl.jaas.config and its listener- and mechanism-prefixed
// forms), secrets (sasl.oauthbearer client secrets, password.encoder.secret,
// delegation.token.secret.key), credentials, private keys and other keys
// ending in ".key" (ssl.keystore.key). It judges by name, case-insensitively,
// and errs towards redacting: a harmless value hidden costs nothing, a
// password printed into a ticket does.
func SecretKey(key string) bool {
	k := strings.ToLower(key)
	for _, word := range []string{"password", "secret", "jaas", "credential", "private", "passphrase"} {
		if strings.Contains(k, word) {
			return true
		}
	}
	return strings.HasSuffix(k, ".key") || strings.HasSuffix(k, "_key") || strings.HasSuffix(k, "apikey") || strings.HasSuffix(k, "token")
}

// RedactValue returns value, or [Redacted] if key is a [SecretKey].
func RedactValue(key, value string) string {
	if SecretKey(key) {
		return Redacted
	}
	return value
}

// Redacted returns a copy of c whose secret values (see [SecretKey]) are
// [Redacted], for rendering it; the Orchestrator receives c itself.
func (c Change) Redacted() Change {
	out := c
	out.Unset = slices.Clone(c.Unset)
	if c.Set != nil {
		out.Set = make(map[string]string, len(c.Set))
		for k, v := range c.Set {
			out.Set[k] = RedactValue(k, v)
		}
	}
	return out
}

// plainChange has Change's fields and none of its methods, so that fmt
// renders it field by field.
type plainChange Change

// GoString renders c as %#v does, with secret values redacted.
func (c Change) GoString() string {
	return "node.Change" + strings.TrimPrefix(fmt.Sprintf("%#v", plainChange(c.Redacted())), "node.plainChange")
}

// LogValue renders c for log/slog, with secret values redacted, whatever
// the handler (a JSON handler would otherwise marshal Set as it is).
func (c Change) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String renders the spec for logs and errors, with config keys sorted and
// secret values redacted, for example "4.1.2 broker rack=a [sasl.jaas.config=REDACTED]".
func (s Spec) String() string {
	var b strings.Builder
	b.WriteString(s.Version)
	for _, r := range s.Roles {
		b.WriteString(" " + string(r))
	}
	if s.Rack != "" {
		b.WriteString(" rack=" + s.Rack)
	}
	if len(s.Config) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(s.Config)) {
			kv = append(kv, k+"="+RedactValue(k, s.Config[k]))
		}
		b.WriteString(" [" + strings.Join(kv, " ") + "]")
	}
	return b.String()
}

// plainSpec has Spec's fields and none of its methods.
type plainSpec Spec

// GoString renders s as %#v does, with secret values redacted.
func (s Spec) GoString() string {
	r := s
	if s.Config != nil {
		r.Config = make(map[string]string, len(s.Config))
		for k, v := range s.Config {
			r.Config[k] = RedactValue(k, v)
		}
	}
	return "node.Spec" + strings.TrimPrefix(fmt.Sprintf("%#v", plainSpec(r)), "node.plainSpec")
}

// LogValue renders s for log/slog, with secret values redacted.
func (s Spec) LogValue() slog.Value { return slog.StringValue(s.String()) }
