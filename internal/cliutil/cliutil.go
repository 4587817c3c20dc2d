// Package cliutil holds what the vmdk and vmdkmount command lines share on top of urfave/cli: flags
// accepted after the positional arguments, short usage errors, and the version string.
package cliutil

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
)

// UsageError is a wrong command line: main prints it (what is wrong, then the usage line) and exits 2.
type UsageError struct {
	Msg   string
	Usage string // the usage line of the command at fault
}

func (e *UsageError) Error() string {
	if e.Usage == "" {
		return e.Msg
	}
	return e.Msg + "\nusage: " + e.Usage
}

// ExitCode is the exit status for an error returned by App.Run: 2 for a usage error, 1 otherwise.
func ExitCode(err error) int {
	var ue *UsageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// Usage returns a UsageError for the command of c.
func Usage(c *cli.Context, format string, a ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, a...), Usage: UsageLine(c.App, c.Command)}
}

// UsageLine is the first usage line of a command (or of the app when cmd is nil or the app's root).
func UsageLine(app *cli.App, cmd *cli.Command) string {
	if cmd == nil || cmd.Name == "" || cmd.Name == app.Name {
		if app.UsageText != "" {
			line, _, _ := strings.Cut(app.UsageText, "\n")
			return strings.TrimSpace(line)
		}
		return app.Name + " [options] COMMAND [options] ARGS..."
	}
	line := app.Name + " " + cmd.Name
	for _, f := range cmd.VisibleFlags() {
		if f.Names()[0] != "help" {
			line += " [options]"
			break
		}
	}
	if cmd.ArgsUsage != "" {
		line += " " + cmd.ArgsUsage
	}
	return line
}

// globals are urfave/cli's package-wide settings, the same for both commands.
var globals sync.Once

// Setup makes app's command lines behave as qemu-img's and mount's users expect: a wrong flag is
// reported once with the usage line (not the whole help), --version prints the build's version, and a
// missing required flag is a usage error. Call it once the app's commands are in place.
func Setup(app *cli.App) {
	app.Version = Version()
	app.HideHelpCommand = true
	app.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		return &UsageError{Msg: err.Error(), Usage: UsageLine(app, nil)}
	}
	for _, cmd := range app.Commands {
		cmd := cmd
		cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
			return &UsageError{Msg: err.Error(), Usage: UsageLine(app, cmd)}
		}
	}
	globals.Do(func() {
		// -v is mount's "verbose" for a mount helper: only the long form prints the version.
		cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version and exit"}
		cli.VersionPrinter = func(c *cli.Context) { fmt.Fprintf(c.App.Writer, "%s %s\n", c.App.Name, c.App.Version) }
		cli.FlagStringer = flagString(cli.FlagStringer)
	})
}

// Version is the module version and VCS revision the binary was built from, as debug.ReadBuildInfo
// knows them: "v1.2.3", or "(devel) rev 0123abcd (modified) 2026-01-02T03:04:05Z" for a checkout build.
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, when, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	if rev != "" && !strings.Contains(v, rev[:min(12, len(rev))]) {
		v += " rev " + rev[:min(12, len(rev))] + modified
		if when != "" {
			v += " " + when
		}
	}
	return v + " " + info.GoVersion
}

// Reorder moves flags that follow the positional arguments in front of them, so `vmdk info disk.vmdk
// --json` parses as `vmdk info --json disk.vmdk` (urfave/cli stops at the first positional argument).
// Flags taking a value keep it; everything after "--" stays positional.
func Reorder(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	if len(app.Commands) > 0 {
		// The app's own flags come first, then a command name.
		var lead []string
		for len(rest) > 0 && isFlag(rest[0]) && rest[0] != "--" {
			lead = append(lead, rest[0])
			if takesValue(rest[0], app.Flags) && len(rest) > 1 {
				lead = append(lead, rest[1])
				rest = rest[1:]
			}
			rest = rest[1:]
		}
		if len(rest) > 0 {
			if cmd := app.Command(rest[0]); cmd != nil {
				out = append(append(out, lead...), rest[0])
				return append(out, flagsFirst(rest[1:], cmd.Flags)...)
			}
		}
		rest = append(lead, rest...)
	}
	return append(out, flagsFirst(rest, app.Flags)...)
}

func flagsFirst(args []string, defs []cli.Flag) []string {
	var flags, pos []string
	dashes := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			dashes = true
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case isFlag(a):
			flags = append(flags, a)
			if takesValue(a, defs) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			pos = append(pos, a)
		}
	}
	if dashes {
		flags = append(flags, "--")
	}
	return append(flags, pos...)
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// takesValue tells whether flag (as written: "-o", "--volume") reads the next argument as its value.
func takesValue(flag string, defs []cli.Flag) bool {
	if strings.Contains(flag, "=") {
		return false
	}
	name := strings.TrimLeft(flag, "-")
	for _, d := range defs {
		for _, n := range d.Names() {
			if n == name {
				_, isBool := d.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}

// flagString renders a flag's help line: the placeholder is the flag's name in capitals, not urfave's
// "value", and no "(default: false)" after a switch nor a second default after one the text gives.
func flagString(orig cli.FlagStringFunc) cli.FlagStringFunc {
	return func(f cli.Flag) string {
		s := orig(f)
		names, usage, ok := strings.Cut(s, "\t")
		if !ok {
			return s
		}
		if len(f.Names()) > 0 {
			names = strings.ReplaceAll(names, " value", " "+strings.ToUpper(strings.ReplaceAll(f.Names()[0], "-", "_")))
		}
		if _, isBool := f.(*cli.BoolFlag); isBool {
			usage = strings.TrimSuffix(usage, " (default: false)")
		}
		if first := strings.Index(usage, "(default:"); first >= 0 {
			if last := strings.LastIndex(usage, " (default:"); last > first {
				usage = usage[:last]
			}
		}
		return names + "\t" + usage
	}
}

// JSONFlags are --json and its qemu-img spelling --output=json.
func JSONFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		&cli.StringFlag{Name: "output", Usage: "`FORMAT` of the output: json (the same as --json) or human"},
	}
}

// WantJSON tells whether --json or --output=json was given; another --output is a usage error.
func WantJSON(c *cli.Context) (bool, error) {
	switch c.String("output") {
	case "", "human":
		return c.Bool("json"), nil
	case "json":
		return true, nil
	}
	return false, Usage(c, "--output %s: want json or human", c.String("output"))
}
