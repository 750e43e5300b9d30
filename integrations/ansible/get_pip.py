"""A stand-in for get-pip.py, for ansible-test on a machine that reaches PyPI
but not the host ansible-test downloads its get-pip.py from.

ansible-test makes each sanity test's virtualenv without pip, then runs its
cached get-pip.py in it with pip's install arguments (`pip==24.2` and
options). This does the same with the standard library's ensurepip (the pip
that ships with this Python) followed by `pip install` of exactly those
arguments from PyPI (get-pip.py's own `--no-setuptools` and `--no-wheel`
say what not to leave installed). integrations/ansible/setup.sh puts it where
ansible-test looks (~/.ansible/test/cache/get_pip_<version>.py), only where
no real one is."""
import ensurepip
import os
import subprocess
import sys

OWN_OPTIONS = {"--no-setuptools": "setuptools", "--no-wheel": "wheel"}

args = [a for a in sys.argv[1:] if a not in OWN_OPTIONS]
unwanted = [OWN_OPTIONS[a] for a in sys.argv[1:] if a in OWN_OPTIONS]
# ensurepip points PIP_CONFIG_FILE at /dev/null and drops every PIP_*
# variable, in this process: pip's own run below needs them back (the
# machine's pip.conf may name the CA that reaches PyPI).
environment = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
pip = [sys.executable, "-m", "pip"]
status = subprocess.call(pip + ["install", "--quiet", *args], env=environment)
if status == 0 and unwanted:
    status = subprocess.call(pip + ["uninstall", "--quiet", "--yes", *unwanted], env=environment)
sys.exit(status)
