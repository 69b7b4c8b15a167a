"""``livestream-tutorial [--lab] [jupyter options]``: the lessons in Notebook 7.

``--lab`` opens them in JupyterLab instead; every other option goes to Jupyter.
"""

import os
import sys
from pathlib import Path


def notebooks_folder():
    """The lessons' folder: ``notebooks/`` here, or beside the package's source."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / "notebooks" / "01_xhr.ipynb").is_file():
            return base / "notebooks"
    return None


def jupyter_command(folder, argv):
    """The command that opens ``folder`` in Notebook 7, or JupyterLab with ``--lab``."""
    front_end = "jupyterlab" if "--lab" in argv else "notebook"
    command = [sys.executable, "-m", front_end, str(folder)]
    command += [arg for arg in argv if arg != "--lab"]
    # Jupyter will not run as root unless told to, and containers and CI
    # machines often are root
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in command:
        command.append("--allow-root")
    return command


def main(argv=None):
    folder = notebooks_folder()
    if folder is None:
        print(
            "livestream-tutorial: no notebooks/ folder found; run this from a "
            "checkout of the livestream repository",
            file=sys.stderr,
        )
        return 2
    command = jupyter_command(folder, sys.argv[1:] if argv is None else argv)
    # become Jupyter, so that Ctrl-C and signals reach it directly
    os.execv(sys.executable, command)


if __name__ == "__main__":
    sys.exit(main())
