"""Packaging for pssh, published as ``parallel-ssh`` (a drop-in for parallel-ssh 2.x)."""

import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read(name: str) -> str:
    with open(os.path.join(HERE, name), encoding="utf-8") as handle:
        return handle.read()


def version() -> str:
    """The version from pssh/_version.py, read as text so that gevent need not be installed."""
    match = re.search(r'^__version__ = "([^"]+)"', read("pssh/_version.py"), re.MULTILINE)
    if match is None:
        raise RuntimeError("no __version__ in pssh/_version.py")
    return match.group(1)


setup(
    name="parallel-ssh",
    version=version(),
    description="Asynchronous parallel SSH client library on libssh2 and gevent",
    long_description=read("README.rst"),
    long_description_content_type="text/x-rst",
    license="LGPL-2.1-only",
    packages=find_packages(include=["pssh", "pssh.*"]),
    package_data={"pssh": ["py.typed"]},
    python_requires=">=3.9",
    install_requires=["ssh2-python>=1.0.0", "ssh-python>=1.2.0", "gevent>=21.1",
                      "ClusterShell>=1.9", "rich>=13"],
    # pssh.distributed: run shards of the host list as tasks on a Dask cluster.
    extras_require={"distributed": ["dask[distributed]>=2024.1"]},
    entry_points={"console_scripts": ["pssh = pssh.cli:main"]},
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Developers",
        "Intended Audience :: System Administrators",
        "License :: OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Typing :: Typed",
        "Topic :: System :: Networking",
        "Topic :: System :: Systems Administration",
    ],
)
