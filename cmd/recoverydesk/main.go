// Command recoverydesk runs RecoveryDesk, the two-factor authentication (TOTP) service and support
// desk, and its administration commands: serve (the default), migrate, agent, apikey, audit,
// backup and restore.
//
// The whole program is run(ctx, args, getenv, stdout, stderr): main only connects it to the
// process (signals, environment, exit code), so tests drive the real program in-process.
// Configuration comes from defaults, then RECOVERYDESK_* environment variables, then flags; see
// config.go and `recoverydesk --help`. Package-level values are read-only tables (settings,
// commands, patterns); no state is global, and there is no init and no default logger.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err on stderr and maps it to the process status: 0 success, 2 bad command
// line, 1 anything else (including a broken audit chain).
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "recoverydesk: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// usageError is a mistake on the command line (unknown command or flag, missing argument).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usagef builds a usageError that points to the command's --help.
func usagef(cmd, format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...) + fmt.Sprintf(" (see 'recoverydesk %s--help')", cmdPrefix(cmd))}
}

func cmdPrefix(cmd string) string {
	if cmd == "" {
		return ""
	}
	return cmd + " "
}

// errHelpShown ends a command after its --help was printed; run returns nil for it.
var errHelpShown = errors.New("help shown")

// app carries what every command needs: the process's outputs, its environment and the
// configuration flags given on the command line (before or after the command name).
type app struct {
	getenv  func(string) string
	stdout  io.Writer
	stderr  io.Writer
	overlay map[string]string
	log     *slog.Logger
	// now is the clock of every command; clock is its control, mounted by serve at
	// /test/clock, and nil except in a binary built with the rdtest tag (clock_rdtest.go).
	now   func() time.Time
	clock http.Handler
}

// run is the whole program. args[0] is the program name. It returns nil on success, a
// usageError for a bad command line, and any other error for a failure.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	a := &app{
		getenv:  getenv,
		stdout:  stdout,
		stderr:  stderr,
		overlay: map[string]string{},
		log:     slog.New(slog.NewJSONHandler(stderr, nil)),
	}
	now, clock, err := newClock(getenv)
	if err != nil {
		return err
	}
	a.now, a.clock = now, clock
	err = a.dispatch(ctx, args[1:])
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

// commandList is the help's list of commands, in the order shown.
var commandList = [][2]string{
	{"serve", "serve the host API and the health checks (the default command)"},
	{"migrate [--reseal]", "apply database migrations; --reseal re-seals every secret under the first key"},
	{"agent add --email E --name N --role R", "create a support desk agent and print a one-time setup link"},
	{"apikey add --name NAME", "create an API key for the host platform (shown once)"},
	{"apikey list", "list API keys: id, name, created, revoked"},
	{"apikey revoke ID", "revoke an API key"},
	{"audit verify [--checkpoint FILE]", "check the audit chain; with a checkpoint, also detect a truncated or rewritten tail"},
	{"audit export [--out FILE]", "write the audit chain as JSONL and a signed checkpoint"},
	{"backup FILE", "write a consistent copy of the SQLite database to FILE, while serving"},
	{"restore FILE | --finish", "restore a backup; --finish runs only the last step (after pg_restore)"},
	{"demo", "seed a demo desk: agents with printed credentials, customers, tickets in every state"},
	{"help [COMMAND]", "show help for a command"},
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	fs := a.flagSet("")
	fs.Usage = func() { a.topUsage(a.stdout) }
	if err := a.parse(fs, "", args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return a.serve(ctx, nil)
	}
	switch cmd, args := rest[0], rest[1:]; cmd {
	case "serve":
		return a.serve(ctx, args)
	case "migrate":
		return a.migrate(ctx, args)
	case "apikey":
		return a.apikey(ctx, args)
	case "agent":
		return a.agent(ctx, args)
	case "audit":
		return a.audit(ctx, args)
	case "backup":
		return a.backup(ctx, args)
	case "restore":
		return a.restore(ctx, args)
	case "demo":
		return a.demo(ctx, args)
	case "help":
		return a.help(ctx, args)
	default:
		if ok, err := a.testCommand(ctx, cmd, args); ok {
			return err
		}
		return usagef("", "unknown command %q; commands are serve, migrate, agent, apikey, audit, backup, restore, demo, help", cmd)
	}
}

// help prints the usage of a command: `recoverydesk help audit verify` is `recoverydesk audit verify --help`.
func (a *app) help(ctx context.Context, args []string) error {
	if len(args) == 0 {
		a.topUsage(a.stdout)
		return errHelpShown
	}
	return a.dispatch(ctx, append(append([]string{}, args...), "--help"))
}

func (a *app) topUsage(w io.Writer) {
	fmt.Fprint(w, `RecoveryDesk: the two-factor authentication (TOTP) service and support desk.

Usage:
  recoverydesk [configuration flags] [COMMAND] [command flags]

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commandList {
		fmt.Fprintf(tw, "  %s\t%s\n", c[0], c[1])
	}
	tw.Flush()
	fmt.Fprint(w, `
Configuration: every setting is an environment variable and a flag of the same name
(RECOVERYDESK_TELEGRAM_API is --telegram-api). Flags win over the environment, the
environment over the defaults. Configuration flags go before or after the command.

`)
	for _, s := range settings {
		fmt.Fprintf(w, "  --%s, %s (default: %s)\n        %s\n", flagName(s.env), s.env, s.helpDefault(), s.usage)
	}
	fmt.Fprint(w, `
Secrets (keys, tokens, the SMTP URL) are better given in the environment: flags show in the
process list. Run 'recoverydesk COMMAND --help' for a command's own flags.
`)
}

// flagSet returns a FlagSet for command cmd ("" for the top level) that accepts every
// configuration flag besides the command's own. Output is handled by parse.
func (a *app) flagSet(cmd string) *flag.FlagSet {
	fs := flag.NewFlagSet("recoverydesk "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	registerConfigFlags(fs, a.overlay)
	return fs
}

// command returns the FlagSet of a command whose --help shows synopsis, text and its own flags.
func (a *app) command(cmd, synopsis, text string) *flag.FlagSet {
	fs := a.flagSet(cmd)
	fs.Usage = func() { commandUsage(a.stdout, fs, synopsis, text) }
	return fs
}

// parse parses args into fs. --help prints the usage on stdout and returns errHelpShown; any
// other problem is a usageError naming the command.
func (a *app) parse(fs *flag.FlagSet, cmd string, args []string) error {
	// The flag package calls Usage itself on -help and on every error; help goes to stdout
	// when asked for, and an error is one line on stderr, so Usage is silenced while parsing.
	usage := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		usage()
		return errHelpShown
	}
	if err != nil {
		prefix := ""
		if cmd != "" {
			prefix = cmd + ": "
		}
		return usagef(cmd, "%s%s", prefix, flagError(err))
	}
	return nil
}

// flagNamePattern is what a real flag name looks like; anything else is not quoted back.
var flagNamePattern = regexp.MustCompile(`^-{1,2}[a-z][a-z0-9-]{0,30}$`)

// flagError rewrites the flag package's errors so that they never quote what the user typed
// unless it looks like a flag name: "-<secret>" (a key whose base64 starts with '-', say) would
// otherwise be printed as an undefined flag, and a bad value is quoted by the flag package.
func flagError(err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		if flagNamePattern.MatchString(name) {
			return "unknown flag " + name
		}
		return "an argument starting with '-' is not a known flag"
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		if _, after, found := strings.Cut(rest, " for flag "); found {
			name, _, _ := strings.Cut(after, ":")
			return "invalid value for flag " + name
		}
	}
	if strings.HasPrefix(msg, "bad flag syntax: ") {
		return "bad flag syntax"
	}
	return msg
}

// commandUsage writes a command's help: synopsis, explanation and its own flags. Configuration
// flags are accepted too but listed only by `recoverydesk --help`.
func commandUsage(w io.Writer, fs *flag.FlagSet, synopsis, text string) {
	fmt.Fprintf(w, "Usage: recoverydesk %s\n\n%s\n", synopsis, strings.TrimSpace(text))
	var own []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !isConfigFlag(f.Name) {
			own = append(own, f)
		}
	})
	if len(own) > 0 {
		sort.Slice(own, func(i, j int) bool { return own[i].Name < own[j].Name })
		fmt.Fprintf(w, "\nFlags:\n")
		for _, f := range own {
			name, usage := flag.UnquoteUsage(f)
			if name != "" {
				name = " " + name
			}
			fmt.Fprintf(w, "  --%s%s\n        %s", f.Name, name, usage)
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "\nEvery configuration flag (--db, --keys, ...) is accepted as well; see 'recoverydesk --help'.\n")
}

// parseAll parses a command's arguments allowing flags after positional arguments
// (`apikey revoke ID --db x`), and returns the positional ones.
func (a *app) parseAll(fs *flag.FlagSet, cmd string, args []string) ([]string, error) {
	var pos []string
	for {
		if err := a.parse(fs, cmd, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
}

// wantArgs checks the number of positional arguments of a command.
func wantArgs(cmd string, pos []string, names ...string) error {
	if len(pos) > len(names) {
		// Not quoted: a value that lost its flag (a key, say) must not be printed back.
		return usagef(cmd, "%s: unexpected argument #%d (it takes %d)", cmd, len(names)+1, len(names))
	}
	if len(pos) < len(names) {
		return usagef(cmd, "%s: missing %s", cmd, names[len(pos)])
	}
	return nil
}
