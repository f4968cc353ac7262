"""Sphinx configuration for pssh's documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "pssh"
author = "pssh developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "alabaster"

# The build runs with -n (every reference must resolve) and offline, so there is no
# intersphinx: the standard library's types named in signatures are let through, as is
# the proxy connection and the connection set-up slots a ParallelSSHClient shares with
# its SSHClients (private keywords).
nitpick_ignore = [
    ("py:class", "collections.abc.Iterator"),
    ("py:class", "collections.abc.Iterable"),
    ("py:class", "collections.abc.Callable"),
    ("py:class", "logging.Logger"),
    ("py:class", "Bastion"),
    ("py:class", "HandshakeGate"),
    ("py:class", "os.PathLike"),
    ("py:class", "SSHConfigSetting"),  # what ssh_config= takes: see doc/ssh_config.rst
    ("py:class", "KnownHostsSetting"),  # what known_hosts= takes: see doc/security.rst
    ("py:class", "distributed.client.Client"),  # Dask's, in pssh.distributed signatures
    ("py:class", "Shard"),  # pssh.distributed's internal work order, in Outcomes(...)
    ("py:class", "Client"),  # Dask's client and futures, in Outcomes(...)
    ("py:class", "Future"),
]
exclude_patterns = ["_build"]

# `make man` builds pssh(1) from the command line's page.
man_pages = [("cli", "pssh", "run commands and copy files on many hosts at once over SSH",
              [author], 1)]
