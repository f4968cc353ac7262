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
exclude_patterns = ["_build"]
