"""`python -m trajgen` and the `trajgen` console command.

Ctrl-C or SIGTERM at any moment ends with one line and exit 130 / 143, start-up included:
until the command line is loaded (numpy, OpenCV, click: up to a second), a minimal handler
says that nothing was done and leaves at once; from then on cli.py handles signals.
"""

import os
import signal


def _stopped_while_starting(signum, frame):
    name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
    os.write(2, f"Error: stopped by {name} while starting; nothing was done\n".encode())
    os._exit(128 + signum)


def run():
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped_while_starting)
    from trajgen.cli import entry

    entry()


if __name__ == "__main__":
    run()
