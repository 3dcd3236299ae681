// Command kupgrade plans and carries out zero-downtime upgrades of Apache
// Kafka clusters (ZooKeeper and KRaft) from a shell, with the kupgrade
// library's gates, journal and plans. Nodes are restarted by your own
// commands, rendered per node from templates (see package
// github.com/kupgrade/kupgrade/node/shellnode).
//
// Install:
//
//	go install github.com/kupgrade/kupgrade/cmd/kupgrade@latest
//
// Usage:
//
//	kupgrade inspect  [-config kupgrade.json] [-json]
//	kupgrade plan     [-config kupgrade.json] -to 4.1.2 [-via 3.9.2] [-o plan.json] [-json]
//	kupgrade apply    [-config kupgrade.json] -plan plan.json [-journal plan.json.journal] [-pass-holds]
//	kupgrade status   -plan plan.json [-journal plan.json.journal] [-json]
//	kupgrade rollback [-config kupgrade.json] -plan plan.json [-journal plan.json.journal] [-dry-run]
//
// Run `kupgrade help` for the config file's format and `kupgrade <command>
// -h` for each command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `kupgrade plans and carries out zero-downtime Apache Kafka upgrades.

Usage:
  kupgrade inspect  [-config FILE] [-json]              what the cluster runs now
  kupgrade plan     [-config FILE] -to R [-via R,…] [-o plan.json] [-json]
                                                        a plan to reach release R (a dry run)
  kupgrade apply    [-config FILE] -plan plan.json [-journal FILE] [-pass-holds]
                                                        carry a plan out: gated, journaled, resumable
  kupgrade status   -plan plan.json [-journal FILE] [-json]
                                                        what the journal says of a plan's steps
  kupgrade rollback [-config FILE] -plan plan.json [-journal FILE] [-dry-run]
                                                        undo an interrupted or finished apply
  kupgrade help                                         this text

Run "kupgrade COMMAND -h" for a command's flags.

apply is resumable: run it again with the same plan and journal (default
PLAN.journal) after a crash, a SIGKILL or a failed step, and it goes on where
the last run stopped, re-checking a step that was in flight. Ctrl-C stops it
safely between actions. rollback plans the undo from the plan and its journal,
writes it to PLAN.rollback.json and runs it with the journal
PLAN.rollback.json.journal (run it again to resume it too).

Exit codes: 0 done, 1 failed, 2 bad usage or config, 3 stopped before a held
(irreversible) step: review it, then apply again with -pass-holds.

The config file (-config, default ./kupgrade.json, or $KUPGRADE_CONFIG) is JSON;
relative paths in it are relative to its directory:

  {
    "seeds": ["kafka-1:9092", "kafka-2:9092"],
    "controllers": ["kafka-1:9093"],              optional: KRaft controller listeners
    "tls": {"ca": "ca.pem", "cert": "client.pem", "key": "client.key"},
    "sasl": {"mechanism": "SCRAM-SHA-512", "username": "admin",
             "password_file": "admin.pw"},        or "password_env": "KAFKA_PASSWORD"
    "nodes": [{"id": 1, "host": "kafka-1", "port": 9092,
               "roles": ["controller", "broker"], "version": "3.9.2"}],
    "commands": {
      "restart": "ssh {{.Host}} sudo kafka-switch {{.Release}} {{quote (json .Config)}} && ssh {{.Host}} sudo systemctl restart kafka",
      "alive":   "ssh {{.Host}} systemctl is-active --quiet kafka",
      "nodes":   "cat /etc/kafka/nodes.json"
    },
    "timeouts": {"restart": "10m", "alive": "30s", "nodes": "30s"}
  }

Secrets are never accepted in the file or on the command line: a SASL password
comes from a file or an environment variable, and secret config values
(passwords, JAAS configs, keys) are printed as REDACTED.

Commands are run with sh -c, one node at a time, rendered per node from Go
text/template templates that see: .ID .Host .Port .Roles .Rack .Version (the
release the node runs now), .Release (the release to run after the restart,
empty to keep its own), .Change, .Config (static config keys to set: a map),
.Unset (keys to remove); functions: quote (one shell word), json, join SEP LIST.
  restart  stop the node gracefully, apply the change, start it; exit 0 = started
  alive    optional: exit 0 = the node's process runs, 1 = it does not
  nodes    optional: print the nodes as a JSON array like "nodes" above (their
           releases let inspect and plan know what runs where); overrides "nodes".
           A static "nodes" list must be kept true: after an upgrade, edit each
           "version" (or leave it out, and releases stay unknown to inspect).
A failed command's exit code and the tail of its stderr are reported per node.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
	exitHeld  = 3
)

// usageError marks an error in the command line or the config file.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// run runs one kupgrade command and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"inspect":  cmdInspect,
		"plan":     cmdPlan,
		"apply":    cmdApply,
		"status":   cmdStatus,
		"rollback": cmdRollback,
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kupgrade: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	err := cmd(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "kupgrade %s: %v\n", args[0], err)
		return exitUsage
	case errors.As(err, new(heldError)):
		fmt.Fprintf(stderr, "kupgrade %s: %v\n", args[0], err)
		return exitHeld
	default:
		fmt.Fprintf(stderr, "kupgrade %s: %v\n", args[0], err)
		return exitFail
	}
}

// newFlags returns a flag set for a command whose errors are returned, not
// printed and exited on.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: kupgrade %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\nRun \"kupgrade help\" for the config file's format.")
	}
	return fs
}

// parseFlags parses args, refusing positional arguments: a command line
// never carries secrets or hosts kupgrade should guess at.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// configFlag adds -config to fs.
func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("KUPGRADE_CONFIG")
	if def == "" {
		def = "kupgrade.json"
	}
	return fs.String("config", def, "the connection and commands `file` (JSON; see kupgrade help); $KUPGRADE_CONFIG sets the default")
}
