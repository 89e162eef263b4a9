#!/usr/bin/env bash
# Runs scripts/slurm/dsv4-batch.sbatch and dsv4-merge.sbatch on a real,
# throwaway one-node Slurm cluster on this host (Debian 12's slurm-wlm, installed
# if missing) and checks that the merged answers of a 3-task array equal one
# unsharded `dsv4 batch` run, with task 1 resuming a part that a kill -9 cut
# short and then requeued by Slurm; and that a merge missing a part is refused.
# Needs ./build/dsv4 (scripts/build.sh build) and root (it re-runs itself under
# sudo). Everything it starts lives in a temp dir and is stopped and removed on
# exit; ~20-30 s on 2 cores once the packages are installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
dsv4=$repo/build/dsv4
[[ -x $dsv4 ]] || { echo "slurm test: FAIL: $dsv4 not built (bash scripts/build.sh build)" >&2; exit 1; }
# The daemons run as root (slurmd launches the jobs); sudo only when needed.
if [[ $(id -u) -ne 0 ]]; then exec sudo bash "$repo/scripts/slurm/test.sh" "$@"; fi

started=$SECONDS
tmp=$(mktemp -d -t dsv4-slurm.XXXXXX)
# munged wants every directory above its socket searchable by all.
chmod 755 "$tmp"
mkdir -m 755 "$tmp/run"
mkdir "$tmp/state" "$tmp/spool" "$tmp/work" "$tmp/parts"
partial_pid=""

say() { echo "slurm test: $*" >&2; }
cleanup() {
  local rc=$?
  set +e
  [[ -n $partial_pid ]] && kill -9 "$partial_pid" 2>/dev/null
  if [[ -f $tmp/run/slurmctld.pid ]]; then
    timeout 10 scancel --quiet --user=root >/dev/null 2>&1   # jobs left by a failure
  fi
  local name pid pids=() i
  for name in slurmd slurmctld munged; do
    pid=$(cat "$tmp/run/$name.pid" 2>/dev/null) && kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  # Job steps (slurmstepd and what it runs) outlive slurmd: end those of our jobs.
  for pid in $(pgrep -f "slurmstepd: \[" 2>/dev/null); do
    grep -qs "$tmp" "/proc/$pid/environ" && kill -9 "$pid" 2>/dev/null
  done
  for pid in $(pgrep -x dsv4 2>/dev/null); do
    grep -qs "$tmp" "/proc/$pid/cmdline" && kill -9 "$pid" 2>/dev/null
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

fail() {
  say "$*"
  local f
  for f in "$tmp"/slurmctld.log "$tmp"/slurmd.log "$tmp"/munged.log "$tmp"/work/*.log "$tmp"/*.err; do
    [[ -s $f ]] || continue
    echo "----- tail of ${f#"$tmp"/}" >&2
    tail -n 25 "$f" >&2
  done
  echo "slurm test: FAIL ($((SECONDS - started)) s): $*" >&2
  exit 1
}

# Slurm, munge and rsync (for MODEL_STAGE) from Debian, quietly.
missing=()
for p in slurmctld slurmd slurm-client munge rsync; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing slurm-wlm munge rsync"
  { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 --no-install-recommends \
      slurm-wlm munge rsync; } \
    >"$tmp/apt.err" 2>&1 || fail "apt-get install slurm-wlm munge rsync failed"
fi

# Our own munged: own key and socket, so a system munged (if any) is left alone.
mungekey -c -k "$tmp/munge.key" 2>"$tmp/mungekey.err" || fail "mungekey failed"
munged --force --key-file="$tmp/munge.key" --socket="$tmp/run/munge.sock" --pid-file="$tmp/run/munged.pid" \
  --log-file="$tmp/munged.log" --seed-file="$tmp/munged.seed" 2>"$tmp/munged.err" || fail "munged did not start"
munge -n -S "$tmp/run/munge.sock" | unmunge -S "$tmp/run/munge.sock" >/dev/null 2>&1 || fail "munge round trip failed"

# A one-node cluster: this host, all its CPUs, no cgroups (containers lack
# them), no accounting; every file in the temp dir. Ports away from the
# defaults, so a real slurmd on this host does not clash.
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
export SLURM_CONF=$tmp/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=dsv4test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/run/munge.sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/run/slurmctld.pid
SlurmdPidFile=$tmp/run/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
DependencyParameters=kill_invalid_depend
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF" -i 2>"$tmp/slurmctld.err" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" -N "$host" 2>"$tmp/slurmd.err" || fail "slurmd did not start"
state=""
for ((i = 0; i < 120; i++)); do
  state=$(timeout 10 sinfo -h -o %T 2>/dev/null || true)
  [[ $state == idle ]] && break
  sleep 0.5
done
[[ $state == idle ]] || fail "node not idle after 60 s (sinfo: '${state}')"
say "cluster up ($((SECONDS - started)) s): $host, $cpus CPUs"

# The demo model and ~12 requests: sampled chat and completion requests, some
# with their own seed, some sharing a system prompt; an invalid JSON line and
# a repeated custom_id (records with custom_id null), and a bad url (400).
model=$tmp/model input=$tmp/requests.jsonl
"$dsv4" synth --like tiny --vocab 129280 --tokenizer tests/data/tokenizer/tokenizer.json --out "$model" \
  >"$tmp/synth.err" 2>&1 || fail "dsv4 synth failed"
python3 - "$input" <<'EOF'
import json, sys
system = {"role": "system", "content": "You are a terse assistant."}
questions = ["What is 2+2?", "Name a prime.", "Say hi.", "Why is the sky blue?", "Count to three.",
             "A color?", "Best sorting algorithm?", "Capital of France?"]
lines = []
for i, q in enumerate(questions):
    body = {"model": "deepseek-v4-flash", "max_tokens": 4 + i % 5, "temperature": 0.8,
            "messages": ([system] if i % 2 == 0 else []) + [{"role": "user", "content": q}]}
    if i % 3 == 0: body["seed"] = 100 + i
    if i % 4 == 1: body["thinking"] = {"type": "disabled"}
    lines.append({"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions", "body": body})
lines.append({"custom_id": "text", "method": "POST", "url": "/v1/completions",
              "body": {"prompt": "Once upon a time", "max_tokens": 6, "temperature": 0.8}})
out = [json.dumps(l) for l in lines]
out.insert(6, '{"custom_id": "broken", "method": ')                   # line 6: not JSON (shard 0)
out.insert(8, json.dumps(lines[0]))                                  # line 8: repeats q0 (shard 2)
out.append(json.dumps({"custom_id": "bad-url", "method": "POST", "url": "/v1/embeddings",
                       "body": {"input": "x"}}))                     # line 11: a 400 (shard 2)
assert len(out) == 12
open(sys.argv[1], "w").write("\n".join(out) + "\n")
EOF

# The reference: one unsharded run.
"$dsv4" batch -m "$model" --input "$input" --output "$tmp/reference.jsonl" --threads "$cpus" --progress 60 \
  2>"$tmp/reference.err" || fail "unsharded dsv4 batch failed"

# A task killed mid-run, as preemption (SIGTERM, then SIGKILL) or a node loss
# leaves it: shard 1 started by hand, one request at a time, killed -9 after
# its first record. If it outran the kill, cut its part back to that record.
# Either way a torn record follows, as a kill inside a write would leave it.
part1=$tmp/parts/part-1-of-3.jsonl
"$dsv4" batch -m "$model" --input "$input" --output "$part1" --shard 1/3 --parallel 1 --threads 1 \
  --progress 60 2>"$tmp/partial.err" &
partial_pid=$!
for ((i = 0; i < 300; i++)); do
  [[ -f $part1 ]] && (($(wc -l <"$part1") >= 1)) && break
  kill -0 "$partial_pid" 2>/dev/null || break
  sleep 0.05
done
kill -9 "$partial_pid" 2>/dev/null || true
wait "$partial_pid" 2>/dev/null || true
partial_pid=""
[[ -f $part1 ]] && (($(wc -l <"$part1") >= 1)) || fail "the partial run of shard 1 wrote no record"
if (($(wc -l <"$part1") >= 4)); then
  head -n 1 "$part1" >"$part1.cut" && cat "$part1.cut" >"$part1" && rm "$part1.cut"
fi
printf '{"id":"batch_req_torn","custom_id":"q' >>"$part1"
say "shard 1 killed after $(wc -l <"$part1") record(s)"

# The recipe as docs/cluster.md gives it: the array, and the merge depending on it.
cd "$tmp/work"
# The tasks load a copy of the model staged on "the node" (MODEL_STAGE); task 1
# resuming the part begun with $model checks that the copy is the same model.
export MODEL=$model INPUT=$input OUTDIR=$tmp/parts DSV4=$dsv4 MODEL_STAGE=$tmp/node-local/model
array=$(timeout 30 sbatch --parsable --array=0-2 "$repo/scripts/slurm/dsv4-batch.sbatch" --parallel 4 --progress 60) ||
  fail "sbatch of the array failed"
array=${array%%;*}
merge=$(timeout 30 sbatch --parsable --dependency="afterok:$array" "$repo/scripts/slurm/dsv4-merge.sbatch") ||
  fail "sbatch of the merge failed"
merge=${merge%%;*}

# Waits (at most $2 s) until every job of $1 has ended; fails unless all completed.
wait_jobs() {
  local job=$1 limit=$2 states
  for ((i = 0; i < limit * 4; i++)); do
    states=$(timeout 10 scontrol -o show job "$job" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | sort | uniq -c | tr -s ' \n' ' ')
    [[ $states =~ JobState=(PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED|RESIZING|SUSPENDED) || -z $states ]] || break
    sleep 0.25
  done
  [[ $states =~ ^\ *[0-9]+\ JobState=COMPLETED\ *$ ]] || fail "job $job did not complete within $limit s:$states"
}
wait_jobs "$merge" 120
wait_jobs "$array" 10
merged=$tmp/parts/merged.jsonl
[[ -s $merged ]] || fail "the merge job wrote no $merged"
say "array $array and merge $merge done ($((SECONDS - started)) s)"

grep -q "^loaded $MODEL_STAGE:" "$tmp/work/dsv4-batch-${array}_0.log" || fail "task 0 did not load the staged model"
# Task 1 resumed the killed part, kept its record and computed the rest.
grep -Eq 'done in .*: [1-9][0-9]* written .*, [1-9][0-9]* resumed' "$tmp/work/dsv4-batch-${array}_1.log" ||
  fail "task 1 did not resume its part (no 'N written ..., M resumed' in its log)"

# Slurm's requeue (what preemption does) reruns the task's script: the part is
# found complete, nothing is recomputed, the log keeps both runs. A requeued job
# waits ~2 minutes before it may start again; StartTime=now skips that.
timeout 10 scontrol requeue "${array}_1" >/dev/null || fail "scontrol requeue ${array}_1 failed"
timeout 10 scontrol update JobId="${array}_1" StartTime=now >/dev/null || fail "scontrol update StartTime failed"
wait_jobs "${array}_1" 60
log1=$tmp/work/dsv4-batch-${array}_1.log
grep -q '(restart 1)' "$log1" && grep -q 'done in .*: 0 written .*, 4 resumed' "$log1" ||
  fail "requeued task 1 did not rerun and find its part complete"
say "requeued task 1 reran and resumed its complete part"

# A merge missing a part is refused.
if "$dsv4" merge --input "$input" --output "$tmp/incomplete.jsonl" "$tmp/parts/part-0-of-3.jsonl" \
  "$tmp/parts/part-2-of-3.jsonl" 2>"$tmp/incomplete.err"; then
  fail "dsv4 merge accepted parts 0 and 2 of 3"
fi
[[ ! -e $tmp/incomplete.jsonl ]] || fail "the refused merge left $tmp/incomplete.jsonl"
say "merge of parts 0 and 2 of 3 refused: $(head -n 1 "$tmp/incomplete.err" | cut -c 1-160)"

# The merged answers equal the unsharded run's, record by record.
python3 - "$input" "$merged" "$tmp/reference.jsonl" <<'EOF' || fail "merged output differs from the unsharded run"
import json, sys
input_path, merged_path, reference_path = sys.argv[1:]
first_line = {}
for n, text in enumerate(open(input_path)):
    try:
        cid = json.loads(text).get("custom_id")
    except ValueError:
        continue
    if isinstance(cid, str): first_line.setdefault(cid, n)

def key(record):
    cid = record["custom_id"]
    return ("line", record["error"]["line"]) if cid is None else ("id", cid)

def line_of(k):
    return k[1] if k[0] == "line" else first_line[k[1]]

def essence(record):
    response = record.get("response") or {}
    body = response.get("body") or {}
    usage = body.get("usage") or {}
    return {"choices": body.get("choices"), "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"), "status_code": response.get("status_code"),
            "error": record.get("error"), "error_body": body.get("error")}

def load(path):
    records = {}
    order = []
    for text in open(path):
        record = json.loads(text)
        k = key(record)
        if k in records: sys.exit(f"{path}: {k} answered twice")
        records[k] = essence(record)
        order.append(line_of(k))
    return records, order

merged, order = load(merged_path)
reference, _ = load(reference_path)
problems = []
if order != sorted(order): problems.append(f"merged output not in input-line order: {order}")
if len(merged) != 12: problems.append(f"merged output has {len(merged)} records, expected 12")
for k in sorted(set(merged) | set(reference), key=str):
    if k not in merged: problems.append(f"{k}: missing from the merged output")
    elif k not in reference: problems.append(f"{k}: not in the unsharded output")
    elif merged[k] != reference[k]:
        problems.append(f"{k}: merged {json.dumps(merged[k])[:300]} != unsharded {json.dumps(reference[k])[:300]}")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
EOF
echo "slurm test: PASS ($((SECONDS - started)) s): 3-task array (one task resumed after kill -9, one requeued), merged == unsharded"
