"""The package list, found: every package under convae/, plus conf/ installed as convae.conf
(its package-dir and package-data are in pyproject.toml, with everything else).

Found rather than listed, so a new subpackage cannot silently drop out of a regular
(non-editable) install. It lives here because pyproject.toml's packages.find only finds
folders under their own names: it cannot add conf/ as convae.conf (pypa/setuptools#5145).
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["convae", "convae.*"]), "convae.conf"])
