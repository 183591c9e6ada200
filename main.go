// Command attachd is a storage server for Kazoo (2600Hz) attachments —
// voicemails, call recordings, faxes — with a WebDAV view of what it stores.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/attachd/attachd/plugins/host"
	"github.com/attachd/attachd/server"
	"github.com/attachd/attachd/server/auth"
	"github.com/attachd/attachd/server/config"
	"github.com/attachd/attachd/server/store"
)

func main() {
	if err := app().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "attachd:", err)
		os.Exit(1)
	}
}

func app() *cli.App {
	configFlag := &cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "TOML configuration `FILE` (see config.example.toml)"}
	return &cli.App{
		Name:  "attachd",
		Usage: "store Kazoo attachments on your own server, and mount them over WebDAV",
		Description: "attachd is the web server behind a Kazoo storage plan with \"handler\": \"http\".\n" +
			"Kazoo PUTs or POSTs each voicemail, recording or fax to it and GETs it back;\n" +
			"operators browse the same tree at /dav/. Start with `attachd serve`.",
		Version:              buildVersion(),
		EnableBashCompletion: true,
		// "Did you mean --config?" for a mistyped flag; unknownCommand does
		// the same for commands.
		Suggest: true,
		Action:  unknownCommand,
		Commands: withUnknownCommand([]*cli.Command{
			{
				Name:  "serve",
				Usage: "run the server",
				Description: "Serves the Kazoo contract on every path, WebDAV at /dav/, and /healthz, /readyz, /metrics.\n" +
					"With no configuration it listens on 127.0.0.1:37635 and keeps data in ./attachd-data.\n" +
					"Flags override the file. SIGTERM or SIGINT drains uploads in flight, then stops.",
				Flags: []cli.Flag{
					configFlag,
					&cli.StringFlag{Name: "listen", Aliases: []string{"l"}, Usage: "listen on `ADDR` (host:port)"},
					&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "keep objects and the index in `DIR`"},
				},
				Action: noArgs(serve),
			},
			{
				Name:        "check-config",
				Usage:       "validate a configuration file and print the effective configuration",
				Description: "Prints the configuration with every default filled in, or an error naming the file, line and key.",
				Flags:       []cli.Flag{withRequired(configFlag)},
				Action: noArgs(func(c *cli.Context) error {
					cfg, err := config.Load(c.String("config"))
					if err != nil {
						return err
					}
					b, err := cfg.Redacted().Encode()
					if err != nil {
						return err
					}
					_, err = c.App.Writer.Write(b)
					return err
				}),
			},
			{
				Name:  "hash-password",
				Usage: "print the bcrypt hash of a password read from standard input",
				Description: "Reads one line (the password) from standard input and prints a hash for a\n" +
					"[[users]] password_hash. Example: printf 'secret' | attachd hash-password",
				Action: noArgs(hashPassword),
			},
			{
				Name:  "reindex",
				Usage: "rebuild the index of a data directory from its objects",
				Description: "Rebuilds index.db from the metadata sidecars under DIR/objects and removes blobs\n" +
					"no object names. With a storage plugin ([storage] backend), it first fetches every\n" +
					"sidecar from the backend, so an empty data directory is rebuilt from the backend alone.\n" +
					"Stop the server first: the data directory is locked while it runs.",
				Flags: []cli.Flag{
					configFlag,
					&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, Usage: "the data `DIR` (default: the configuration's data_dir)"},
				},
				Action: noArgs(reindex),
			},
			pluginsCommand(),
			hooksCommand(),
			indexCommand(),
			retentionCommand(),
			migrateCommand(),
			healthcheckCommand(),
			completionCommand(),
			manCommand(),
			{
				Name:  "version",
				Usage: "print the version and the commit it was built from",
				Action: noArgs(func(c *cli.Context) error {
					fmt.Fprintln(c.App.Writer, "attachd", buildVersion())
					return nil
				}),
			},
		}),
	}
}

// unknownCommand is the action of the app and of each command that only
// groups others: without it, urfave/cli answers `attachd serv` with "No help
// topic for 'serv'", which names neither the mistake nor the fix.
func unknownCommand(c *cli.Context) error {
	cmds := c.App.VisibleCommands()
	if c.Command != nil && len(c.Command.Subcommands) > 0 && c.Command.Name != c.App.Name {
		cmds = c.Command.VisibleCommands()
	}
	if c.NArg() == 0 {
		if len(c.Lineage()) > 2 { // a command that groups others: its help
			return cli.ShowSubcommandHelp(c)
		}
		return cli.ShowAppHelp(c)
	}
	name := c.Args().First()
	msg := fmt.Sprintf("%q is not a command", name)
	if cli.SuggestCommand != nil { // nil when built with the tag urfave_cli_no_suggest
		msg += ". " + cli.SuggestCommand(cmds, name)
	}
	return fmt.Errorf("%s (see %s --help)", msg, c.Command.HelpName)
}

// withUnknownCommand gives each command that only groups others the action
// unknownCommand.
func withUnknownCommand(cmds []*cli.Command) []*cli.Command {
	for _, cmd := range cmds {
		if len(cmd.Subcommands) > 0 && cmd.Action == nil {
			cmd.Action = unknownCommand
			withUnknownCommand(cmd.Subcommands)
		}
	}
	return cmds
}

// noArgs refuses arguments to a command that takes none. Flags end at the
// first argument, so in `serve extra -l ADDR` every flag after "extra" would
// otherwise be dropped without a word and the defaults served.
func noArgs(action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() > 0 {
			var names []string // "hooks status": the command and its parents
			for _, ctx := range c.Lineage() {
				if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
					names = append([]string{ctx.Command.Name}, names...)
				}
			}
			return fmt.Errorf("%s: unexpected argument %q: this command takes no arguments, "+
				"and flags after an argument are not read", strings.Join(names, " "), c.Args().First())
		}
		return action(c)
	}
}

func withRequired(f *cli.StringFlag) *cli.StringFlag {
	g := *f
	g.Required = true
	return &g
}

// loadConfig reads --config if given, else the defaults, then applies flags.
func loadConfig(c *cli.Context) (config.Config, error) {
	cfg := config.Default()
	if p := c.String("config"); p != "" {
		var err error
		if cfg, err = config.Load(p); err != nil {
			return cfg, err
		}
	}
	if c.IsSet("listen") {
		cfg.Listen = c.String("listen")
	}
	if c.IsSet("data-dir") {
		cfg.DataDir = c.String("data-dir")
	}
	return cfg, cfg.Validate()
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	return newLoggerAt(cfg.Format, server.Level(cfg.Level), w)
}

// newLoggerAt returns a logger writing in format at level: a *slog.LevelVar
// lets a reload change it.
func newLoggerAt(format string, level slog.Leveler, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(server.Level(cfg.Log.Level))
	log := newLoggerAt(cfg.Log.Format, level, c.App.ErrWriter)
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Caught from the start: SIGHUP's default action would end the
	// process. One sent while starting is handled once started.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	server.ConfigPath = c.String("config")
	server.Version, server.Commit = versionAndCommit()
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	srv.LogLevel = level
	go reloadOnHUP(ctx, c, srv, log, hup)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		srv.Store().Close()
		return fmt.Errorf("listen: %w", err)
	}
	return srv.Serve(ctx, ln)
}

// reloadOnHUP reads the configuration again (the file, then the flags) at
// each SIGHUP and applies it to srv, until ctx ends. A configuration that
// does not load or apply changes nothing.
func reloadOnHUP(ctx context.Context, c *cli.Context, srv *server.Server, log *slog.Logger, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		log.Info("SIGHUP: reloading the configuration", "config", c.String("config"))
		cfg, err := loadConfig(c)
		if err == nil {
			err = srv.Reload(cfg)
		}
		if err != nil {
			log.Error("reload refused; still serving the previous configuration", "err", err)
		}
	}
}

func hashPassword(c *cli.Context) error {
	line, err := bufio.NewReader(c.App.Reader).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	pass := strings.TrimRight(line, "\r\n")
	if pass == "" {
		return errors.New("no password on standard input (try: printf 'secret' | attachd hash-password)")
	}
	if len(pass) > auth.MaxPasswordLen {
		// bcrypt would ignore the rest, and logins refuse such passwords.
		return fmt.Errorf("password is %d bytes long; bcrypt takes at most %d: choose a shorter one", len(pass), auth.MaxPasswordLen)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	fmt.Fprintln(c.App.Writer, string(h))
	return nil
}

func reindex(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, c.App.ErrWriter)
	opts := store.Options{Logger: log, IndexURL: cfg.Index.URL}
	if name := cfg.Storage.Backend; cfg.Storage.Remote() {
		// Rebuild from the backend alone: its sidecars name every object.
		m, err := host.New(host.Config{Dir: cfg.Plugins.Dir, Plugins: map[string]host.Plugin{name: host.Plugin(cfg.Plugin[name])}, Logger: log})
		if err != nil {
			return err
		}
		defer m.Close()
		if opts.Remote, err = m.Backend(name); err != nil {
			return err
		}
	}
	n, err := store.Reindex(c.Context, cfg.DataDir, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "reindexed %d objects in %s\n", n, cfg.DataDir)
	return nil
}
