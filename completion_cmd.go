package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// Both scripts ask attachd itself what may come next (urfave/cli answers
// --generate-bash-completion with the commands, or with the flags when the
// word being completed starts with "-"), so they never go stale as commands
// are added. A word being completed that is not a flag is left out of the
// question: attachd would take it for an unknown command.

const bashCompletion = `# bash completion for attachd (attachd completion bash).
_attachd() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local -a ask=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
	[[ $cur == -* ]] && ask+=("$cur")
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${ask[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o default -F _attachd attachd
`

const zshCompletion = `#compdef attachd
# zsh completion for attachd (attachd completion zsh).
_attachd() {
	local -a ask opts
	ask=("${(@)words[2,CURRENT-1]}")
	[[ ${words[CURRENT]} == -* ]] && ask+=("${words[CURRENT]}")
	opts=("${(@f)$(${words[1]} "${(@)ask}" --generate-bash-completion 2>/dev/null)}")
	compadd -- "${(@)opts}"
}
# Autoloaded from $fpath, this file is the completion function's body; sourced,
# it registers the function.
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
	_attachd "$@"
else
	compdef _attachd attachd
fi
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "Prints a script that completes attachd's commands and flags. The Debian package\n" +
			"installs them; by hand:\n" +
			"  attachd completion bash > /etc/bash_completion.d/attachd\n" +
			"  attachd completion zsh > \"${fpath[1]}/_attachd\"\n" +
			"  attachd completion fish > ~/.config/fish/completions/attachd.fish",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("completion: name one shell: bash, zsh or fish")
			}
			var script string
			switch shell := c.Args().First(); shell {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				var err error
				if script, err = c.App.ToFishCompletion(); err != nil {
					return fmt.Errorf("completion fish: %w", err)
				}
			default:
				return fmt.Errorf("completion: unknown shell %q: want bash, zsh or fish", shell)
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

// manCommand prints the man page, generated from the commands and flags so
// that it says what --help says. The Debian package runs it at build time.
func manCommand() *cli.Command {
	return &cli.Command{
		Name:   "man",
		Usage:  "print the man page (roff)",
		Hidden: true,
		Action: noArgs(func(c *cli.Context) error {
			page, err := c.App.ToManWithSection(8)
			if err != nil {
				return fmt.Errorf("man: %w", err)
			}
			// go-md2man leaves the title line's date empty; a fixed page
			// keeps the package reproducible.
			_, err = fmt.Fprint(c.App.Writer, strings.TrimLeft(page, "\n"))
			return err
		}),
	}
}
