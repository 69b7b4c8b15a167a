"""Find a Chromium to drive, and what else the lessons need from the machine.

Playwright's own browser download is not reachable everywhere, so a Chromium
the machine already has comes first; Playwright's managed one is the fallback.
"""

import argparse
import os
import shutil
import subprocess
import sys

from .nchan import module_path as nchan_module_path
from .services import nginx_path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def chromium_path():
    """A Chromium on this machine: ``$LIVESTREAM_CHROMIUM``, else one on PATH.

    None means "use Playwright's managed browser"
    (``python -m playwright install chromium``).
    """
    chosen = os.environ.get("LIVESTREAM_CHROMIUM")
    if chosen:
        if not os.path.exists(chosen):
            raise FileNotFoundError(
                f"LIVESTREAM_CHROMIUM is {chosen!r}, which does not exist"
            )
        return chosen
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def launch_options():
    """Keyword arguments for Playwright's ``chromium.launch()``."""
    path = chromium_path()
    return {"executable_path": path} if path else {}


# what the lessons need from the machine, by Debian package: a browser to
# drive, Redis for the live feed (lesson 07), nginx for the proxy pitfall (06);
# and what the tests need besides: npm, to read the streams with the
# eventsource package, the client that follows the WHATWG parser,
# iproute2's ip, for network namespaces where a client can vanish, and
# nginx's Nchan module, the C contender livestream-fanout measures against
SYSTEM_PACKAGES = (
    "chromium",
    "redis-server",
    "nginx",
    "npm",
    "iproute2",
    "libnginx-mod-nchan",
)


def missing_packages():
    """The Debian packages in ``SYSTEM_PACKAGES`` whose program this machine lacks."""
    present = {
        "chromium": chromium_path() is not None,
        "redis-server": shutil.which("redis-server") is not None,
        "nginx": nginx_path() is not None,
        "npm": shutil.which("npm") is not None,
        # ip is in /sbin or /usr/sbin, which a user's PATH may lack
        "iproute2": shutil.which("ip", path=f"{os.defpath}:/usr/sbin:/sbin")
        is not None,
        "libnginx-mod-nchan": nchan_module_path() is not None,
    }
    return [name for name in SYSTEM_PACKAGES if not present[name]]


def can_apt_get():
    """Whether this process may install Debian packages: root, on Debian."""
    return (
        hasattr(os, "geteuid")
        and os.geteuid() == 0
        and os.path.exists("/etc/debian_version")
        and shutil.which("apt-get") is not None
    )


def what_to_install(missing):
    """One line that says what to install, where livestream may not install it."""
    return (
        f"livestream: this machine lacks {', '.join(missing)}: install "
        f"{'them' if len(missing) > 1 else 'it'} with its package manager "
        f"(on Debian, as root: apt-get install {' '.join(missing)})"
    )


def install_packages(names):
    """``apt-get install`` the Debian packages ``names``; its exit code."""
    print(f"livestream: installing {' '.join(names)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    code = subprocess.call(["apt-get", "update", "-qq"], env=env)
    if code == 0:
        code = subprocess.call(["apt-get", "install", "-y", "-qq", *names], env=env)
    return code


def main(argv=None):
    """Make sure a Chromium is there: the machine's, else Playwright's managed one.

    ``--with-deps`` also looks for what the other lessons need (as
    Playwright's ``install --with-deps`` does): as root on Debian it installs
    Debian's chromium, redis-server, nginx and the rest of
    ``SYSTEM_PACKAGES`` when they are missing;
    elsewhere it says in one line what to install.
    """
    parser = argparse.ArgumentParser(prog="livestream-browser", description=__doc__)
    parser.add_argument(
        "--with-deps",
        action="store_true",
        help="install what is missing of Debian's "
        + ", ".join(SYSTEM_PACKAGES)
        + " (as root)",
    )
    args = parser.parse_args(argv)
    missing = missing_packages() if args.with_deps else []
    if missing and can_apt_get():
        code = install_packages(missing)
        if code:
            return code
        missing = missing_packages()
    elif missing:
        print(what_to_install(missing))
    path = chromium_path()
    if path:
        print(f"livestream: using the Chromium at {path}")
        return 0
    print("livestream: no Chromium on this machine; installing Playwright's own")
    return subprocess.call([sys.executable, "-m", "playwright", "install", "chromium"])


if __name__ == "__main__":
    sys.exit(main())
