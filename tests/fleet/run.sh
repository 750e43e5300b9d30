#!/usr/bin/env bash
# The fleet test: ansible-core (from PyPI) drives a rolling rollback across
# four real hosts on this machine, through the backout.rollback collection
# installed with `ansible-galaxy collection install integrations/ansible`.
#
# Each host is a network namespace this script creates, joined to the root
# namespace by a veth pair with a /30 of its own, running its own sshd
# (Debian's openssh-server: its own host key and config, listening only on
# its own address, key auth with a key made here, root login) and its own
# health service (tests/fixtures/service.py, the demo's) on 127.0.0.1:8080
# inside the namespace, with its own files (tests/fleet/host.sh).
#
#   web1       batch 1 (the canary): rolls back
#   web2 web3  batch 2: web2 has a corrupt newest backup, so its run fails at
#              the database step; the playbook undoes web2 (backout undo)
#              while web3 rolls back
#   web4       batch 3: never reached, since 1 of 2 hosts failing batch 2
#              is more than max_fail_percentage (25)
#
# Checked: the collection installs from the repository path; the role
# refuses a bundle whose signature fails and one whose serial is older than
# the registry's, leaving the registry byte for byte as it was; --check
# --diff plans on every host and shows each step's actions, changing
# nothing; the real run exits as a failed play; every host's files are then
# compared byte for byte with what they must be; the summary on the
# controller names the hosts rolled back, failed, undone and not reached,
# with run ids, and the fetched reports and journals are there;
# backout_runs lists each host's runs; backout_undo is idempotent.
#
# Needs root (network namespaces). Where namespaces cannot be created it
# prints "SKIPPED: ... because ..." and exits 0. Everything it starts
# (namespaces, sshds, services) is removed on exit, failure or not
# (KEEP_FLEET=1 keeps the work directory for a look).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
started=$SECONDS
phase() { echo; echo "==> [$((SECONDS - started)) s] $*"; }

probe="bkfprobe$$"
if ! why=$(ip netns add "$probe" 2>&1); then
  echo "SKIPPED: fleet test (tests/fleet/run.sh): cannot create network namespaces because: ${why:-ip netns add failed}"
  exit 0
fi
ip netns del "$probe"

phase "setup: openssh-server, iproute2, ansible-core (integrations/ansible/setup.sh)"
venv_bin=$(bash integrations/ansible/setup.sh | tail -1)
export PATH="$venv_bin:$PATH"

plugins=(service-control release-switch sqlite-restore env-toggle smoke-test)
phase "building the plugins and backout"
guests="$PWD/target/guests"
CARGO_TARGET_DIR="$guests" cargo build --locked --release --target wasm32-wasip2 "${plugins[@]/#/-p}"
cargo build --locked -p backout
backout="${CARGO_TARGET_DIR:-$PWD/target}/debug/backout"

work=$(mktemp -d "${TMPDIR:-/tmp}/backout-fleet.XXXXXX")
hosts=(web1 web2 web3 web4)
namespaces=()
cleanup() {
  status=$?
  set +e
  for ns in "${namespaces[@]}"; do
    # Everything this test started runs inside its namespaces: the sshds,
    # the services, anything a rollback started.
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill $pids 2>/dev/null
  done
  for ns in "${namespaces[@]}"; do
    for _ in $(seq 50); do
      [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
      sleep 0.1
    done
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    # Deleting the namespace deletes its end of the veth pair, and with it
    # the root namespace's end.
    ip netns del "$ns" 2>/dev/null
  done
  if [ "${KEEP_FLEET:-}" = 1 ]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAILED: fleet test: $*" >&2; exit 1; }

# A /24 in 10/8 that no interface or route on this machine uses; host i gets
# .(4i+1) (root side) and .(4i+2) (its namespace) of it.
for _ in $(seq 100); do
  net="10.$((100 + RANDOM % 100)).$((RANDOM % 256))"
  if ! ip -4 -o addr show | grep -q " ${net}\." && [ -z "$(ip -4 route show to match "${net}.1" | grep -v '^default')" ]; then
    break
  fi
done

controller="$work/controller"
mkdir -p "$controller" "$work/hosts"
[ -d /run/sshd ] || mkdir -m 0755 /run/sshd   # sshd's privilege separation directory
ssh-keygen -q -t ed25519 -N '' -C backout-fleet-test -f "$controller/id_ed25519"
cp "$controller/id_ed25519.pub" "$controller/authorized_keys"
: > "$controller/known_hosts"

phase "four hosts: namespaces, veth pairs on ${net}.0/24, an sshd and a health service each"
i=0
for host in "${hosts[@]}"; do
  i=$((i + 1))
  ns="bkf$$h$i" outer="bk$$o$i" inner="bk$$i$i"
  root_addr="${net}.$((4 * i + 1))" addr="${net}.$((4 * i + 2))"
  h="$work/hosts/$host"
  ip netns add "$ns"
  namespaces+=("$ns")
  ip link add "$outer" type veth peer name "$inner"
  ip link set "$inner" netns "$ns"
  ip addr add "$root_addr/30" dev "$outer"
  ip link set "$outer" up
  ip -n "$ns" addr add "$addr/30" dev "$inner"
  ip -n "$ns" link set "$inner" up
  ip -n "$ns" link set lo up

  mode=""
  [ "$host" = web2 ] && mode=corrupt-backup
  bash tests/fleet/host.sh "$h" 8080 $mode
  mkdir -p "$h/ssh" "$h/tmp"
  ssh-keygen -q -t ed25519 -N '' -C "$host" -f "$h/ssh/ssh_host_ed25519_key"
  echo "$addr $(cut -d' ' -f1,2 "$h/ssh/ssh_host_ed25519_key.pub")" >> "$controller/known_hosts"
  # StrictModes is off because the authorized keys live under /tmp, whose
  # world-writable (sticky) mode StrictModes refuses; the file is 0600 in a
  # 0700 directory of this test.
  cat > "$h/ssh/sshd_config" <<CONF
ListenAddress $addr
Port 22
HostKey $h/ssh/ssh_host_ed25519_key
PidFile $h/ssh/sshd.pid
AuthorizedKeysFile $controller/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
CONF
  ip netns exec "$ns" /usr/sbin/sshd -f "$h/ssh/sshd_config" -E "$h/ssh/sshd.log"
  ip netns exec "$ns" "$h/service/bin/svc" start
  cat >> "$work/inventory.yml.hosts" <<HOST
        $host:
          ansible_host: $addr
          ansible_remote_tmp: $h/tmp
          backout_home: $h/backout
          backout_vars:
            app_dir: $h/app
            data_dir: $h/data
            backup_dir: $h/backups
            ctl: $h/service/bin/svc
            origin: http://127.0.0.1:8080
HOST
done

cat > "$work/inventory.yml" <<INV
all:
  children:
    fleet:
      vars:
        ansible_user: root
        ansible_ssh_private_key_file: $controller/id_ed25519
        # Each host's key is in known_hosts (made above): strict checking, no
        # prompt, nothing written to ~/.ssh.
        ansible_ssh_common_args: -o UserKnownHostsFile=$controller/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
        ansible_python_interpreter: /usr/bin/python3
      hosts:
$(cat "$work/inventory.yml.hosts")
INV
cat > "$work/ansible.cfg" <<CFG
[defaults]
inventory = $work/inventory.yml
collections_path = $work/collections
forks = 4
retry_files_enabled = false
[ssh_connection]
control_path_dir = $work/cp
pipelining = true
CFG
export ANSIBLE_CONFIG="$work/ansible.cfg" ANSIBLE_HOME="$work/ansible-home" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
# cryptography warns about DSA each time ansible starts; nothing here uses DSA.
export PYTHONWARNINGS="ignore:DSA is deprecated"

phase "ansible-galaxy collection install integrations/ansible"
ansible-galaxy collection install integrations/ansible -p "$work/collections"
[ -f "$work/collections/ansible_collections/backout/rollback/plugins/modules/backout_run.py" ] || fail "the collection did not install"

phase "the publisher: registry, signing key, two signed bundles (an old serial and the current one), the runbook's lock"
export BACKOUT_REGISTRY="$controller/registry" BACKOUT_STATE_DIR="$controller/state" BACKOUT_CACHE_DIR="$controller/cache"
for plugin in "${plugins[@]}"; do
  "$backout" registry add "$guests/wasm32-wasip2/release/${plugin//-/_}.wasm" >/dev/null
done
public=$("$backout" key generate --out "$controller/publisher.key" | sed -n 's/^public key: //p')
"$backout" registry sign --key "$controller/publisher.key" --expires-in 30d
"$backout" registry export --to "$controller/registry-old.tar"
"$backout" registry sign --key "$controller/publisher.key" --expires-in 30d
"$backout" registry export --to "$controller/registry.tar"
serial=$(sed -n 's/^serial = //p' "$controller/registry/index.toml")
# A bundle whose index was changed after it was signed, and is still a
# well-formed index (a plugin's publisher renamed): only its signature
# tells.
python3 - "$controller/registry.tar" "$controller/registry-tampered.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1]) as src, tarfile.open(sys.argv[2], "w") as dst:
    for member in src.getmembers():
        data = src.extractfile(member).read() if member.isfile() else None
        if member.name == "index.toml":
            tampered = data.replace(b'publisher = "local"', b'publisher = "lokal"', 1)
            assert tampered != data, "nothing to tamper with in index.toml"
            data = tampered
            member.size = len(data)
        dst.addfile(member, io.BytesIO(data) if data is not None else None)
PY
cp integrations/ansible/examples/fleet-rollback.toml "$controller/fleet-rollback.toml"
"$backout" lock "$controller/fleet-rollback.toml"
unset BACKOUT_REGISTRY BACKOUT_STATE_DIR BACKOUT_CACHE_DIR
# The hosts get a build without debug info: the same code, a quarter of the bytes to copy.
objcopy --strip-debug "$backout" "$controller/backout" 2>/dev/null || cp "$backout" "$controller/backout"

cat > "$work/fleet.yml" <<VARS
backout_binary_src: $controller/backout
backout_bundle_src: $controller/registry.tar
backout_runbook_src: $controller/fleet-rollback.toml
backout_trusted_keys:
  - name: publisher
    public: "$public"
backout_fetch_dir: $work/out/fetched
backout_summary_dir: $work/out
fleet_serial: [1, 2]
fleet_max_fail_percentage: 25
VARS
playbook=(ansible-playbook backout.rollback.fleet_rollback -e "@$work/fleet.yml")

# Every file of a host's app, data and backups: path, type, and the sha256 of
# its bytes (or a link's target).
snapshot() {
  python3 - "$1" <<'PY'
import hashlib, os, sys
root = sys.argv[1]
for top in ("app", "data", "backups"):
    for base, dirs, files in os.walk(os.path.join(root, top)):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(base, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                print(rel, "link", os.readlink(path))
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    print(rel, "file", hashlib.sha256(f.read()).hexdigest())
            else:
                print(rel, "dir")
PY
}
tree_digest() { find "$1" -type f -print0 | sort -z | xargs -0 sha256sum; }
health() {
  ip netns exec "$1" python3 -c 'import json, urllib.request
h = json.load(urllib.request.urlopen("http://127.0.0.1:8080/health", timeout=5))
print(h["release"], h["flags"]["INSIGHT_GENERATION_ENABLED"], h["flags"]["SEMANTIC_CHUNKING_OPTIONAL"])'
}

phase "prepare every host: binary, trust file, bundle imported and verified, runbook and lock (--tags backout_install,backout_stage)"
# All hosts at once: nothing runs yet, so there is no batch to wait for.
"${playbook[@]}" --tags backout_install,backout_stage -e '{"fleet_serial": ["100%"]}'
for host in "${hosts[@]}"; do
  got=$(sed -n 's/^serial = //p' "$work/hosts/$host/backout/registry/index.toml")
  [ "$got" = "$serial" ] || fail "$host's registry is at serial $got, not $serial"
done

phase "web1 refuses a bundle whose signature fails, and one older than its registry; its registry stays byte for byte"
before=$(tree_digest "$work/hosts/web1/backout/registry")
for bundle in registry-tampered.tar registry-old.tar; do
  if "${playbook[@]}" --tags backout_install --limit web1 -e "backout_bundle_src=$controller/$bundle" > "$work/refused-$bundle.log" 2>&1; then
    cat "$work/refused-$bundle.log"
    fail "web1 accepted $bundle"
  fi
  # (No `| head` under pipefail: a grep cut off by SIGPIPE fails the script.)
  refusal=$(grep -m1 -o 'backout refused the bundle[^"]*' "$work/refused-$bundle.log")
  refusal=${refusal%%$'\n'*}
  echo "$refusal"
  echo "$refusal" > "$work/refusal-$bundle.txt"
  [ "$(tree_digest "$work/hosts/web1/backout/registry")" = "$before" ] || fail "$bundle changed web1's registry"
done
grep -q 'signature' "$work/refusal-registry-tampered.tar.txt" || fail "the tampered bundle was not refused for its signature"
grep -q 'older than serial' "$work/refusal-registry-old.tar.txt" || fail "the old bundle was not refused for its serial"

declare -A before_tree
for host in "${hosts[@]}"; do
  before_tree[$host]=$(snapshot "$work/hosts/$host")
done

phase "ansible-playbook --check --diff: plans on every host, changes nothing"
"${playbook[@]}" --check --diff -e '{"fleet_serial": ["100%"]}' > "$work/check.log" 2>&1 || { cat "$work/check.log"; fail "the check run failed"; }
grep -m 12 -E 'will: |Plan for' "$work/check.log"
grep -q 'will: switch /app/current from 2.0.1 to 2.0.0' "$work/check.log" || fail "--diff does not show the plan's actions"
for host in "${hosts[@]}"; do
  [ "$(snapshot "$work/hosts/$host")" = "${before_tree[$host]}" ] || fail "--check changed $host's files"
  [ -z "$(ls -A "$work/hosts/$host/backout/state/runs" 2>/dev/null)" ] || fail "--check started a run on $host"
done

phase "ansible-playbook backout.rollback.fleet_rollback: serial [1, 2], max_fail_percentage 25"
set +e
"${playbook[@]}" 2>&1 | tee "$work/rollback.log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 2 ] || fail "ansible-playbook exited $rc, not 2 (a host failed and the play stopped)"

phase "the summary on the controller"
cat "$work/out/summary.txt"
python3 - "$work/out/summary.json" <<'PY'
import json, os, sys
s = json.load(open(sys.argv[1]))
def check(what, got, want):
    if got != want:
        sys.exit(f"summary: {what} is {got}, not {want}")
check("rolled_back", s["rolled_back"], ["web1", "web3"])
check("failed", s["failed"], ["web2"])
check("undone", s["undone"], ["web2"])
check("not_reached", s["not_reached"], ["web4"])
records = {r["host"]: r for r in s["records"]}
check("web2's undone steps", records["web2"]["undone_steps"], ["release", "stop"])
check("web2's failed step", records["web2"]["failed_step"], "database")
check("web2's run state", records["web2"]["run_state"], "failed")
for host in ("web1", "web2", "web3"):
    run_id = s["runs"][host]
    if not run_id or "fleet-rollback" not in run_id:
        sys.exit(f"summary: {host} has no run id")
    for kind in ("reports", "journals"):
        path = s[kind][host]
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            sys.exit(f"summary: {host}'s {kind[:-1]} {path} was not fetched")
    journal = open(s["journals"][host]).read()
    if run_id not in journal:
        sys.exit(f"{host}'s fetched journal is not its run's")
if '"command":"undo"' not in open(s["journals"]["web2"]).read().replace(" ", ""):
    sys.exit("web2's journal has no undo session")
if "web2" not in open(s["reports"]["web2"]).read() and s["runs"]["web2"] not in open(s["reports"]["web2"]).read():
    sys.exit("web2's report does not name its run")
print("summary: as expected")
PY

phase "every host's files, byte for byte"
expected_env="$work/expected.env"
sed -e 's/^INSIGHT_GENERATION_ENABLED=true /INSIGHT_GENERATION_ENABLED=false /' \
    -e 's/^SEMANTIC_CHUNKING_OPTIONAL="true"/SEMANTIC_CHUNKING_OPTIONAL="false"/' tests/demo/app.env > "$expected_env"
cmp -s "$expected_env" tests/demo/app.env && fail "the expected .env equals the original"
for host in web1 web3; do
  h="$work/hosts/$host"
  echo "${before_tree[$host]}" > "$work/before-$host.txt"
  python3 - "$h" "$expected_env" "$work/before-$host.txt" <<'PY' || fail "$host's files are not what the rollback must leave"
import hashlib, os, sys
h, expected_env, before_file = sys.argv[1:4]
before = {}
for line in open(before_file).read().splitlines():
    path, kind, *rest = line.split(" ")
    before[path] = (kind, rest[0] if rest else None)
def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
want = dict(before)
want["app/current"] = ("link", "releases/2.0.0")
want["app/.env"] = ("file", sha(expected_env))
want["data/cortex.db"] = ("file", before["backups/cortex-backup-2026-11-22.db"][1])
got = {}
for top in ("app", "data", "backups"):
    for base, dirs, files in os.walk(os.path.join(h, top)):
        for name in dirs + files:
            path = os.path.join(base, name)
            rel = os.path.relpath(path, h)
            if os.path.islink(path):
                got[rel] = ("link", os.readlink(path))
            elif os.path.isfile(path):
                got[rel] = ("file", sha(path))
            else:
                got[rel] = ("dir", None)
# The safety copies: the bytes each changed file had before.
for rel, (kind, digest) in list(got.items()):
    if ".backout-" in rel and rel.endswith(".bak"):
        original = rel.split(".backout-")[0]
        if digest != before[original][1]:
            sys.exit(f"safety copy {rel} does not hold {original}'s old bytes")
        want[rel] = (kind, digest)
if not any(".backout-" in rel for rel in got if rel.startswith("data/")):
    sys.exit("no safety copy of the database")
if got != want:
    for rel in sorted(set(got) | set(want)):
        if got.get(rel) != want.get(rel):
            print(f"  {rel}: got {got.get(rel)}, want {want.get(rel)}", file=sys.stderr)
    sys.exit(1)
PY
  ns="bkf$$h$(( ${host#web} ))"
  [ "$(health "$ns")" = "2.0.0 false false" ] || fail "$host's service answers $(health "$ns"), not release 2.0.0 with the flags off"
  echo "$host: rolled back: current -> releases/2.0.0, the 2026-11-22 backup's bytes, the flags off (every other byte kept, safety copies hold the old bytes); its service answers 2.0.0"
done
for host in web2 web4; do
  [ "$(snapshot "$work/hosts/$host")" = "${before_tree[$host]}" ] || {
    diff <(echo "${before_tree[$host]}") <(snapshot "$work/hosts/$host") >&2
    fail "$host's files are not byte for byte as before"
  }
  ns="bkf$$h$(( ${host#web} ))"
  [ "$(health "$ns")" = "2.0.1 true true" ] || fail "$host's service answers $(health "$ns"), not release 2.0.1 as before"
done
echo "web2: undone: every file byte for byte as before; its service answers 2.0.1 again"
[ -z "$(ls -A "$work/hosts/web4/backout/state/runs" 2>/dev/null)" ] || fail "web4 was rolled back although the fleet stopped"
echo "web4: not reached: no run, every file byte for byte as before; its service answers 2.0.1"

phase "backout_runs on every reached host; backout_undo again on web2 changes nothing"
# The minimal callback prints `HOST | STATUS => {the module's JSON}` for
# each host.
results() {
  python3 -c 'import json, re, sys
text, out, decoder = open(sys.argv[1]).read(), {}, json.JSONDecoder()
for m in re.finditer(r"^(\S+) \| [A-Z]+ => ", text, re.MULTILINE):
    out[m.group(1)], _ = decoder.raw_decode(text, m.end())
json.dump(out, sys.stdout)' "$1"
}
export ANSIBLE_STDOUT_CALLBACK=ansible.builtin.minimal
ansible 'web1:web2:web3' -e "@$work/fleet.yml" -m backout.rollback.backout_runs \
  -a 'binary={{ backout_home }}/bin/backout state_dir={{ backout_home }}/state' > "$work/runs.log"
results "$work/runs.log" > "$work/runs.json"
python3 - "$work/runs.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
want = {"web1": "succeeded", "web2": "undone", "web3": "succeeded"}
for host, state in want.items():
    runs = result.get(host, {}).get("runs")
    if [r["state"] for r in runs] != [state]:
        sys.exit(f"backout_runs on {host}: {runs}, not one run {state}")
print("backout_runs: web1 succeeded, web2 undone, web3 succeeded")
PY
ansible web2 -e "@$work/fleet.yml" -m backout.rollback.backout_undo \
  -a 'binary={{ backout_home }}/bin/backout state_dir={{ backout_home }}/state registry={{ backout_home }}/registry trust={{ backout_home }}/etc/trust.toml run=last' > "$work/undo-again.log"
results "$work/undo-again.log" > "$work/undo-again.json"
python3 - "$work/undo-again.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["web2"]
if r.get("failed") or r.get("changed") or r.get("state") != "undone" or r.get("undone"):
    sys.exit(f"backout_undo of an undone run: {r.get('msg')} changed={r.get('changed')} state={r.get('state')}")
print("backout_undo again on web2: changed=false, state undone")
PY
[ "$(snapshot "$work/hosts/web2")" = "${before_tree[web2]}" ] || fail "the second undo changed web2's files"

phase "backout_run of a runbook already in place on web1: check mode and a run both say changed=false, and nothing runs"
# web1's flags are off since its rollback: a runbook that only turns them off
# has nothing to change, and backout says so without starting a run.
cat > "$work/flags-only.toml" <<'TOML'
version = 1
name = "flags-only"

[vars]
app_dir = "/srv/cortex"

[[step]]
id = "flags"
uses = "env-toggle@0.1.0"
with = { file = "/app/.env", set = { INSIGHT_GENERATION_ENABLED = "false", SEMANTIC_CHUNKING_OPTIONAL = "false" } }
[step.grants]
dirs = [{ host = "${vars.app_dir}", guest = "/app", mode = "rw" }]
TOML
before_web1=$(snapshot "$work/hosts/web1")
args="{\"binary\": \"{{ backout_home }}/bin/backout\", \"state_dir\": \"{{ backout_home }}/state\", \"registry\": \"{{ backout_home }}/registry\", \"trust\": \"{{ backout_home }}/etc/trust.toml\", \"runbook\": \"$work/flags-only.toml\", \"vars\": {\"app_dir\": \"{{ backout_vars.app_dir }}\"}}"
ansible web1 -e "@$work/fleet.yml" -m backout.rollback.backout_run -a "$args" --check > "$work/in-place-check.log"
ansible web1 -e "@$work/fleet.yml" -m backout.rollback.backout_run -a "$args" > "$work/in-place-run.log"
results "$work/in-place-check.log" > "$work/in-place-check.json"
results "$work/in-place-run.log" > "$work/in-place-run.json"
python3 - "$work/in-place-check.json" "$work/in-place-run.json" <<'PY'
import json, sys
check, run = (json.load(open(f))["web1"] for f in sys.argv[1:3])
if check.get("failed") or check.get("changed") or check.get("state") != "planned":
    sys.exit(f"check mode of a runbook in place: {check.get('msg')} changed={check.get('changed')} state={check.get('state')}")
if run.get("failed") or run.get("changed") or run.get("state") != "unchanged" or run.get("run_id"):
    sys.exit(f"backout_run of a runbook in place: {run.get('msg')} changed={run.get('changed')} state={run.get('state')}")
print(f"web1: check mode changed=false; run changed=false, state unchanged: {run.get('msg')}")
PY
[ "$(snapshot "$work/hosts/web1")" = "$before_web1" ] || fail "a runbook already in place changed web1's files"
[ "$(find "$work/hosts/web1/backout/state/runs" -mindepth 1 -maxdepth 1 | wc -l)" = 1 ] || fail "a runbook already in place journaled a run on web1"

echo; echo "fleet test passed in $((SECONDS - started)) s"
