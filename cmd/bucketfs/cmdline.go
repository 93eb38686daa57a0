package main

import (
	"fmt"
	"io"
	"strings"
)

// flagSpec is one flag: its names, its value, and what --help says of it.
type flagSpec struct {
	name  string // long name: --name on the command line, -o name (with _ for -) as a mount option
	short string // one-letter alias (-f), or ""
	arg   string // placeholder of the value in --help; "" for a switch
	def   string // the default as --help shows it; "" when there is none to show
	usage string
	value value
	// notOption keeps the flag out of -o (--help, --version).
	notOption bool
}

// flagGroup is a titled section of --help.
type flagGroup struct {
	c     *commandLine
	title string
	flags []*flagSpec
}

// commandLine is a command's flags, in --help order, and its parser.
// Go's flag package is not used: it writes flags with one dash, prints the
// whole usage on every mistake, and has no -o mount options.
type commandLine struct {
	groups       []*flagGroup
	byName       map[string]*flagSpec // long and short names
	mountOptions bool                 // -o is accepted
	sloppy       bool                 // an unknown mount option is a warning (mount -s)
	warnings     []string             // filled by parse
}

func newCommandLine(mountOptions bool) *commandLine {
	return &commandLine{byName: map[string]*flagSpec{}, mountOptions: mountOptions}
}

func (c *commandLine) group(title string) *flagGroup {
	g := &flagGroup{c: c, title: title}
	c.groups = append(c.groups, g)
	return g
}

func (g *flagGroup) add(f *flagSpec) {
	for _, n := range []string{f.name, f.short} {
		if n == "" {
			continue
		}
		if _, dup := g.c.byName[n]; dup {
			panic("flag declared twice: " + n)
		}
		g.c.byName[n] = f
	}
	g.flags = append(g.flags, f)
}

func (f *flagSpec) isSwitch() bool {
	_, ok := f.value.(switchValue)
	return ok
}

// display is how messages name the flag: --name.
func (f *flagSpec) display() string { return "--" + f.name }

// parse sets the flags in args and returns the other arguments. Flags are
// --name, --name=value, --name value, -name (as Go's flag package allowed),
// and -o mount options; they may come before, between and after the
// positional arguments; "--" ends them.
func (c *commandLine) parse(args []string) ([]string, error) {
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(positional, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		_, known := c.byName[name]
		if c.mountOptions && (name == "o" || !known && strings.HasPrefix(a, "-o") && !strings.HasPrefix(a, "--")) {
			// -o OPTS, -o=OPTS, -oOPTS
			switch {
			case name == "o" && hasVal:
			case name != "o":
				val = a[2:]
			case i+1 < len(args):
				i++
				val = args[i]
			default:
				return nil, usagef("-o needs mount options (-o ro,metadata_ttl=1s)")
			}
			if err := c.setMountOptions(val); err != nil {
				return nil, err
			}
			continue
		}
		f, ok := c.byName[name]
		if !ok {
			return nil, usagef("unknown flag %s%s", dashes(a), name)
		}
		switch {
		case hasVal:
		case f.isSwitch():
			val = "true"
		case i+1 < len(args):
			i++
			val = args[i]
		default:
			return nil, usagef("%s needs a value (%s %s)", f.display(), f.display(), f.arg)
		}
		if err := f.value.Set(val); err != nil {
			return nil, usagef("%s: %v", f.display(), err)
		}
	}
	return positional, nil
}

// dashes returns the dashes a flag was written with, for messages.
func dashes(a string) string {
	if strings.HasPrefix(a, "--") {
		return "--"
	}
	return "-"
}

// genericMountOptions are the options mount(8), mount.fuse3 and fstab
// conventions pass to every filesystem. bucketfs accepts and ignores them:
// its mounts are always nosuid and nodev, and the rest concern mount(8),
// systemd or the kernel's atime handling, which S3 has no use for.
var genericMountOptions = map[string]bool{
	"rw": true, "defaults": true, "auto": true, "noauto": true,
	"dev": true, "nodev": true, "suid": true, "nosuid": true, "exec": true, "noexec": true,
	"atime": true, "noatime": true, "relatime": true, "norelatime": true,
	"strictatime": true, "nostrictatime": true, "lazytime": true, "nolazytime": true,
	"diratime": true, "nodiratime": true, "async": true,
	"user": true, "nouser": true, "users": true, "owner": true, "group": true,
	"nofail": true, "_netdev": true, "loud": true, "silent": true,
}

// setMountOptions applies a comma-separated -o list. Each flag is an
// option under its long name (with _ or -); ro sets --read-only and rw
// clears it; a switch takes no value or =true/=false. A value holding a
// comma is written in double quotes (prefix="a,b/").
func (c *commandLine) setMountOptions(list string) error {
	for _, opt := range splitMountOptions(list) {
		if opt == "" {
			continue
		}
		name, val, hasVal := strings.Cut(opt, "=")
		val = strings.Trim(val, `"`)
		switch {
		case name == "ro" && !hasVal:
			name, val, hasVal = "read-only", "true", true
		case name == "rw" && !hasVal:
			name, val, hasVal = "read-only", "false", true
		case genericMountOptions[name] || strings.HasPrefix(name, "x-") || name == "comment":
			continue
		}
		f, ok := c.byName[strings.ReplaceAll(name, "_", "-")]
		if !ok || f.notOption || len(name) == 1 {
			if c.sloppy {
				c.warnings = append(c.warnings, fmt.Sprintf("ignoring unknown mount option %q", name))
				continue
			}
			return usagef("unknown mount option %q", name)
		}
		switch {
		case hasVal:
		case f.isSwitch():
			val = "true"
		default:
			return usagef("mount option %s needs a value (%s=%s)", name, name, f.arg)
		}
		if err := f.value.Set(val); err != nil {
			return usagef("mount option %s: %v", name, err)
		}
	}
	return nil
}

// splitMountOptions splits at commas outside double quotes.
func splitMountOptions(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ',' && !quoted:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	return append(out, cur.String())
}

// printHelp writes header, the flags by group as README writes them
// (--flag ARG, then what it does and its default, once), and footer.
func (c *commandLine) printHelp(w io.Writer, header, footer string) {
	fmt.Fprint(w, header)
	const width = 28
	for _, g := range c.groups {
		if g.title != "" {
			fmt.Fprintf(w, "\n%s:\n", g.title)
		} else {
			fmt.Fprintln(w)
		}
		for _, f := range g.flags {
			left := f.display()
			if f.short != "" {
				left = "-" + f.short + ", " + left
			}
			if f.arg != "" {
				left += " " + f.arg
			}
			text := f.usage
			if f.def != "" {
				text += " (default: " + f.def + ")"
			}
			lines := wrap(text, 100-width)
			if len(left) > width-4 {
				fmt.Fprintf(w, "  %s\n", left)
				left = ""
			}
			for i, l := range lines {
				if i > 0 {
					left = ""
				}
				fmt.Fprintf(w, "  %-*s%s\n", width-2, left, l)
			}
		}
	}
	fmt.Fprint(w, footer)
}

// wrap breaks s into lines of at most n columns, at spaces.
func wrap(s string, n int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > n {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}
