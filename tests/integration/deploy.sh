#!/bin/sh
# deploy.sh DAEMON SOURCE_DIR WORK_DIR: the wiring of deploy/.
#  - deploy/kubernetes: every manifest parses; the Indexed Job's
#    completions and parallelism equal the --shards in its arguments; its
#    -c path is the ConfigMap's file in the projected volume and the
#    config's password_file is the Secret's, not in the ConfigMap; that
#    config passes --check-config; and --print-shard for every
#    JOB_COMPLETION_INDEX 0..N-1, with the Job's own arguments, gives
#    slices that are disjoint and add up to the whole fleet.
#  - the systemd template: its ExecStart, %i and $GFE_ARGS expanded, does
#    the same for --shard I/N on N hosts, and systemd-analyze verify is
#    silent on it.
#  - deploy/Containerfile, which cannot be built here (no registry): a
#    lint only, debian:12 and .ci/deps run as it is.
# The checker must also catch broken copies of the manifests (the
# negative cases at the end), or it proves nothing.
set -u
daemon=${1:?usage: deploy.sh DAEMON SOURCE_DIR WORK_DIR}
src=${2:?usage: deploy.sh DAEMON SOURCE_DIR WORK_DIR}
work=${3:?usage: deploy.sh DAEMON SOURCE_DIR WORK_DIR}
pw=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
failed=0
unset JOB_COMPLETION_INDEX CREDENTIALS_DIRECTORY

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

python3 -c 'import yaml' 2>/dev/null || {
	echo "deploy: no python3-yaml (see .ci/deps): skipped"; exit 77; }
rm -rf "$work"
mkdir -p "$work"

cat >"$work/check.py" <<'PY'
"""Checks a deploy/kubernetes folder against the daemon; exit 1 with the
reason on stderr at the first problem."""
import configparser, os, re, subprocess, sys, yaml

kdir, daemon, work, pw = sys.argv[1:5]


def die(msg):
    sys.exit("deploy-check: " + msg)


docs = []
for name in sorted(os.listdir(kdir)):
    if not name.endswith((".yaml", ".yml")):
        continue
    with open(os.path.join(kdir, name)) as f:
        try:
            docs += [(name, d) for d in yaml.safe_load_all(f) if d]
        except yaml.YAMLError as e:
            die("%s does not parse: %s" % (name, e))
kinds = {}
for name, d in docs:
    if "kind" not in d or "metadata" not in d and d["kind"] != "Kustomization":
        die("%s: a document without kind or metadata" % name)
    kinds.setdefault(d["kind"], []).append(d)
for res in (kinds.get("Kustomization") or [{}])[0].get("resources", []):
    if not os.path.exists(os.path.join(kdir, res)):
        die("kustomization names %s, which is not there" % res)

jobs = kinds.get("Job", [])
if len(jobs) != 1:
    die("expected one Job, found %d" % len(jobs))
job = jobs[0]
spec = job["spec"]
if spec.get("completionMode") != "Indexed":
    die("the Job is not completionMode: Indexed")
pod = spec["template"]["spec"]
ctr = pod["containers"][0]
argv = list(ctr.get("command", [])) + list(ctr.get("args", []))
if not argv or os.path.basename(argv[0]) != "gf-machine-emulator":
    die("the pod does not run gf-machine-emulator: %s" % argv)
if argv.count("--shards") != 1 or "--shard" in argv:
    die("the pod must pass --shards N once (and no --shard): %s" % argv)
shards = argv[argv.index("--shards") + 1]
if not re.fullmatch(r"[1-9][0-9]*", shards):
    die("--shards %r is not a count" % shards)
shards = int(shards)
for key in ("completions", "parallelism"):
    if spec.get(key) != shards:
        die("the Job's %s is %r, --shards is %d" % (key, spec.get(key), shards))
for e in ctr.get("env", []):
    if e["name"] == "JOB_COMPLETION_INDEX":
        ref = e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if ref != "metadata.annotations['batch.kubernetes.io/job-completion-index']":
            die("JOB_COMPLETION_INDEX is not the pod's completion index: %r"
                % e)
if argv.count("-c") != 1:
    die("the pod must name its config with -c once: %s" % argv)
cfgpath = argv[argv.index("-c") + 1]

# Which volume holds the config, and what is projected into it.
mounts = {m["mountPath"].rstrip("/"): m["name"] for m in ctr.get("volumeMounts", [])}
cfgdir = os.path.dirname(cfgpath)
if cfgdir not in mounts:
    die("no volume is mounted at %s, where -c looks" % cfgdir)
vol = [v for v in pod["volumes"] if v["name"] == mounts[cfgdir]][0]
files = {}  # path in the folder -> (kind, name, key)
srcs = vol["projected"]["sources"] if "projected" in vol else [vol]
for s in srcs:
    for kind, ref in (("ConfigMap", "configMap"), ("Secret", "secret")):
        if ref in s:
            name = s[ref].get("name") or s[ref].get("secretName")
            for it in s[ref].get("items", []):
                files[it["path"]] = (kind, name, it["key"])
base = os.path.basename(cfgpath)
if files.get(base, ("",))[0] != "ConfigMap":
    die("%s is not a ConfigMap's file in volume %s" % (base, vol["name"]))
kind, cmname, cmkey = files[base]
cms = [c for c in kinds.get("ConfigMap", []) if c["metadata"]["name"] == cmname]
if not cms or cmkey not in cms[0].get("data", {}):
    die("ConfigMap %s with key %s is not in the manifests" % (cmname, cmkey))
cfgtext = cms[0]["data"][cmkey]
for c in kinds.get("ConfigMap", []):
    if re.search(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])",
                 yaml.safe_dump(c)):
        die("ConfigMap %s holds a password" % c["metadata"]["name"])

cp = configparser.RawConfigParser(delimiters=("=", ":"),
                                  comment_prefixes=("#", ";"),
                                  interpolation=None)
cp.read_string(cfgtext)
if not cp.has_section("FLEET"):
    die("the ConfigMap's config has no [FLEET]")
if cp.has_option("FLEET", "password_file"):
    pwf = cp.get("FLEET", "password_file")
    if os.path.dirname(pwf) not in ("", cfgdir):
        die("password_file %s is not beside the config" % pwf)
    if files.get(os.path.basename(pwf), ("",))[0] != "Secret":
        die("password_file %s does not come from a Secret" % pwf)
    _, sname, skey = files[os.path.basename(pwf)]
    if not [s for s in kinds.get("Secret", []) if s["metadata"]["name"] == sname]:
        die("Secret %s is not in the manifests" % sname)
    with open(os.path.join(work, os.path.basename(pwf)), "w") as f:
        f.write(pw + "\n")
    os.chmod(os.path.join(work, os.path.basename(pwf)), 0o600)

# The config as the pod sees it, in a folder of our own.
local = os.path.join(work, base)
with open(local, "w") as f:
    f.write(cfgtext)
os.chmod(local, 0o600)
run = subprocess.run([daemon, "--check-config", "-c", local],
                     capture_output=True, text=True)
if run.returncode != 0 or "WARNING" in run.stderr:
    die("--check-config on the ConfigMap's config: exit %d\n%s"
        % (run.returncode, run.stderr))
if pw in run.stdout + run.stderr:
    die("--check-config printed the password")
m = re.search(r"^# machines in the fleet: (\d+)$", run.stdout, re.M)
if not m:
    die("--check-config did not say the fleet's size")
total = int(m.group(1))

# Every pod of the Job, with its own arguments and index.
args = [daemon if i == 0 else local if a == cfgpath else a
        for i, a in enumerate(argv) if a != "-f"] + ["--print-shard"]
slices = []
for i in range(shards):
    env = dict(os.environ, JOB_COMPLETION_INDEX=str(i))
    run = subprocess.run(args, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        die("pod %d: exit %d: %s" % (i, run.returncode, run.stderr.strip()))
    first, n, whole = map(int, run.stdout.split())
    if whole != total:
        die("pod %d sees a fleet of %d, not %d" % (i, whole, total))
    slices.append((first, n, i))
end = 0
for first, n, i in sorted(slices):
    if n < 1 or first != end:
        die("pod %d runs %d machines from %d: a gap or an overlap at %d"
            % (i, n, first, end))
    end = first + n
if end != total:
    die("the pods run %d machines of %d" % (end, total))
print("deploy-check: %d shards, %d machines, disjoint and whole" % (shards, total))
PY

# --- the shipped manifests ---
py() { python3 "$work/check.py" "$1" "$daemon" "$2" "$pw"; }
mkdir -p "$work/ok"
py "$src/deploy/kubernetes" "$work/ok" || fail "the manifests in deploy/kubernetes"

# --- the systemd template on N hosts: --shard I/N through $GFE_ARGS ---
tmpl="$src/deploy/gf-machine-emulator@.service.in"
exec_line=$(sed -n 's/^ExecStart=//p' "$tmpl")
set -- $exec_line
[ "$(basename "$1")" = gf-machine-emulator ] ||
    fail "template: ExecStart runs $1"
mkdir -p "$work/tmpl"
printf '[FLEET]\ncount = 7\nserial_first = 5\npassword_file = t.pw\n' \
    >"$work/tmpl/fleet.cfg"
printf '%s\n' "$pw" >"$work/tmpl/t.pw"
chmod 600 "$work/tmpl/fleet.cfg" "$work/tmpl/t.pw"
hosts=3 sum=0 next=0 i=0
while [ "$i" -lt "$hosts" ]; do
	GFE_ARGS="--shard $i/$hosts"
	# systemd's expansion: %i the instance, $GFE_ARGS split into words.
	cmd=$(printf '%s\n' "$exec_line" |
	    sed -e "s#^[^ ]*#$daemon#" \
	    -e "s#[^ ]*/%i\.cfg#$work/tmpl/fleet.cfg#" \
	    -e "s#\\\$GFE_ARGS#$GFE_ARGS#")
	case $cmd in *%*|*'$'*) fail "template: unexpanded: $cmd" ;; esac
	out=$($cmd --print-shard) || fail "template: host $i: $cmd"
	set -- $out
	[ "${1:-x}" = "$next" ] || fail "template: host $i starts at ${1:-?}, not $next"
	next=$((${1:-0} + ${2:-0}))
	sum=$((sum + ${2:-0}))
	i=$((i + 1))
done
[ "$sum" -eq 7 ] && [ "$next" -eq 7 ] ||
    fail "template: $hosts hosts run $sum of 7 machines"
if command -v systemd-analyze >/dev/null 2>&1; then
	sed -e "s#^ExecStart=[^ ]*#ExecStart=$daemon#" -e 's#@[A-Z_]*@#/etc#g' \
	    "$tmpl" >"$work/tmpl/gf-machine-emulator@.service"
	out=$(systemd-analyze verify --man=no \
	    "$work/tmpl/gf-machine-emulator@fleet.service" 2>&1) &&
	    [ -z "$out" ] || fail "template: systemd-analyze verify: $out"
fi

# --- the Containerfile: a lint, it cannot be built here ---
cf="$src/deploy/Containerfile"
[ "$(grep -m1 '^FROM ' "$cf")" = "FROM debian:12" ] ||
    fail "Containerfile: the first FROM is not debian:12"
grep -q '^COPY \.ci/deps ' "$cf" || fail "Containerfile: .ci/deps not copied"
deps=$(sed -n 's#^COPY \.ci/deps \(.*\)#\1#p' "$cf")
grep -q "^RUN sh $deps" "$cf" || fail "Containerfile: $deps is not run"
grep -q 'cmake --install' "$cf" || fail "Containerfile: nothing installed"
grep -q '^ENTRYPOINT \["gf-machine-emulator"\]' "$cf" ||
    fail "Containerfile: the entry point is not the daemon"
grep -q 'python3-yaml' "$src/.ci/deps" || fail ".ci/deps: no python3-yaml"

# --- the checker catches broken manifests ---
# negative NAME EXPECTED SED: a copy with SED applied to job.yaml or
# configmap.yaml must fail with EXPECTED in the reason.
negative() {
	d="$work/neg-$1"
	mkdir -p "$d/k" "$d/w"
	cp "$src"/deploy/kubernetes/*.yaml "$d/k/"
	sed -i "$3" "$d/k/$4"
	if py "$d/k" "$d/w" 2>"$d/err" >/dev/null; then
		fail "negative $1: the checker passed"
	elif ! grep -qF -- "$2" "$d/err"; then
		fail "negative $1: '$2' not in: $(cat "$d/err")"
	fi
}
negative completions "completions is 3, --shards is 4" \
    's/^  completions: 4/  completions: 3/' job.yaml
negative parallelism "parallelism is 5" \
    's/^  parallelism: 4/  parallelism: 5/' job.yaml
negative not-indexed "not completionMode: Indexed" \
    's/completionMode: Indexed/completionMode: NonIndexed/' job.yaml
negative password-in-configmap "holds a password" \
    "s/password_file = fleet.pw/password_file = fleet.pw\n    # $pw/" \
    configmap.yaml
negative password-not-secret "does not come from a Secret" \
    's/password_file = fleet.pw/password_file = other.pw/' configmap.yaml
negative bad-config "--check-config on the ConfigMap" \
    's/count = 10000/count = 0/' configmap.yaml
negative too-many-shards "has no machines" \
    's/count = 10000/count = 3/' configmap.yaml
negative bad-yaml "does not parse" 's/^spec:/spec: [/' job.yaml
negative wrong-index "not the pod's completion index" \
    's/job-completion-index/job-name/' job.yaml

if [ "$failed" -ne 0 ]; then
	echo "deploy: $failed check(s) failed" >&2
	exit 1
fi
echo "deploy: all checks passed"
