#!/bin/bash
# Run several trainings concurrently on one GPU and collect what they produce: the way the H100 records in
# results/ were made (see the book's reproduction notes; each record's env names its device).
#
#   JOBS=jobs.txt LIMIT=540 OUT=/some/dir bash tools/gpu_batch.sh
#
# JOBS: one job per line, `name ARGS`, where ARGS are appended (shell-quoted, eval'd) to
#   python3 -m drlib train --dataset $DATASET --profile $PROFILE --no-progress --set train.num_threads=2
#   (DATASET=beauty and PROFILE=cpu unless set; PYTHON=python3 unless set)
#   e.g.  kl --model diffureason-s --seed 0 --ablation 'with KL'
# LIMIT: seconds after which unfinished jobs are killed (their per-epoch checkpoints stay in runs/, and rerunning
#   the same job resumes them). DRLIB_DATA must name a folder holding <dataset>/<file> when ../shared is absent.
# OUT: receives results.tgz (results/ and the logs) and, split in 15 MB parts, the checkpoints under CKPT_MAX_MB
#   (14 unless set; at most 64 MiB come back from a device call) MB of
#   unfinished runs (runs-part-*); restore them with `cat runs-part-* | tar xzf -` before rerunning.
set -u
JOBS=${JOBS:-jobs.txt}; LIMIT=${LIMIT:-540}; OUT=${OUT:?set OUT to an output folder}
DATASET=${DATASET:-beauty}; PROFILE=${PROFILE:-cpu}
export PYTHONUNBUFFERED=1
logs=$(mktemp -d)/logs; mkdir -p "$logs" "$OUT"
pids=()
while read -r name args; do
  [ -z "$name" ] && continue
  eval "${PYTHON:-python3} -m drlib train --dataset $DATASET --profile $PROFILE --no-progress --set train.num_threads=2 $args" \
    > "$logs/$name.log" 2>&1 &
  pids+=($!)
done < "$JOBS"
end=$((SECONDS + LIMIT))
while [ $SECONDS -lt $end ]; do
  alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break; sleep 5
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
sleep 3
tar czf "$OUT/results.tgz" results/ -C "$(dirname "$logs")" logs 2>/dev/null
ck=$(find runs -name checkpoint.pt -size -${CKPT_MAX_MB:-14}M 2>/dev/null)
[ -n "$ck" ] && tar czf - $ck | split -b 15M - "$OUT/runs-part-"
tail -n 2 "$logs"/*.log
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv
exit 0
