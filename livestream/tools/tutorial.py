"""``livestream-tutorial [jupyter options]``: JupyterLab on the lessons."""

import os
import sys
from pathlib import Path


def notebooks_folder():
    """The lessons' folder: ``notebooks/`` here, or beside the package's source."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / "notebooks" / "01_xhr.ipynb").is_file():
            return base / "notebooks"
    return None


def main(argv=None):
    folder = notebooks_folder()
    if folder is None:
        print(
            "livestream-tutorial: no notebooks/ folder found; run this from a "
            "checkout of the livestream repository",
            file=sys.stderr,
        )
        return 2
    command = [sys.executable, "-m", "jupyterlab", str(folder)]
    command += sys.argv[1:] if argv is None else argv
    # Jupyter will not run as root unless told to, and containers and CI
    # machines often are root
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in command:
        command.append("--allow-root")
    # become Jupyter, so that Ctrl-C and signals reach it directly
    os.execv(sys.executable, command)


if __name__ == "__main__":
    sys.exit(main())
