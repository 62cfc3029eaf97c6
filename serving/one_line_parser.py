"""The one-line-error argument parser of every command line of the project.

`tfposenc-model-server`, `python -m serving.client`, the trainers, `tfposenc-push` and
`tfposenc-probe` all answer a bad flag the same way: exit code 2 and one line on stderr,
`PROG: error: MESSAGE (see --help)`, naming the flag (argparse prints its whole usage
first, 10-20 lines before the one that matters). The module imports nothing but
`argparse` and `sys`, so a command that parses before importing TensorFlow answers a bad
flag with no TensorFlow log before the line. It lives here because `serving` imports
nothing of tfposenc or trainers, while trainers may import serving.
"""

import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line, `PROG: error: ... (see --help)`,
    with exit code 2, and which names an unknown flag before anything else (argparse
    would first complain about missing required flags and never name the unknown one).
    """

    def error(self, message):
        message = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def parse_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        known = tuple(self._option_string_actions)
        for token in args:
            if token == "--":
                break
            name = token.split("=", 1)[0]
            flag_like = token.startswith("-") and len(token) > 1 and not token[1].isdigit()
            if flag_like and not any(option.startswith(name) for option in known):
                self.error(f"unrecognized arguments: {token}")
        return super().parse_args(args, namespace)


__all__ = ["OneLineParser"]
