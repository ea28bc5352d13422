#!/bin/bash
# Run a job list one training at a time on this machine's CPU, in the background, each into logs/q-<name>.log:
# the way the long CPU runs in results/ (TIGER, DiffuReason-T, the HSTU Table 3 rows) are made.
#
#   nohup bash tools/cpu_queue.sh tools/jobs/table2_tiger.txt > /dev/null 2>&1 &
#
# Job lists are those of tools/gpu_batch.sh (tools/jobs/*.txt: one `name ARGS` per line, ARGS appended to
# `python -m drlib train --dataset $DATASET --profile $PROFILE --no-progress`; DATASET=beauty, PROFILE=cpu unless
# set). A finished config is skipped by the CLI (its record is stored), and an unfinished one resumes from its
# checkpoint in runs/ (written after every epoch and every 10 minutes within one), so rerunning the queue after the
# machine stopped goes on where it was. Start/end lines go to $LOGS/cpu-queue.log (LOGS=logs unless set).
# runs/ is not committed and a new session's work tree is fresh: to keep checkpoints for a later session on the
# same machine, export DRLIB_RUNS (and LOGS) to folders outside the work tree, e.g. ~/.cache/drlib/runs.
# PYTHON defaults to .venv/bin/python.
#
# Optional job names after the list run only those jobs. Two queues side by side, one thread each, get slightly
# more done per hour on a 2-core machine than one queue on two threads (TIGER and DiffuReason-T, measured):
#
#   OMP_NUM_THREADS=1 nohup bash tools/cpu_queue.sh tools/jobs/table2_tiger.txt tiger > /dev/null 2>&1 &
#   OMP_NUM_THREADS=1 nohup bash tools/cpu_queue.sh tools/jobs/table2_tiger.txt drt > /dev/null 2>&1 &
#
# Never start two queues that can reach the same job: nothing stops two processes training one run.
set -u
JOBS=${1:?usage: cpu_queue.sh JOBLIST [NAME ...]}
shift
ONLY=" $* "
cd "$(dirname "$0")/.."
DATASET=${DATASET:-beauty}; PROFILE=${PROFILE:-cpu}; PY=${PYTHON:-.venv/bin/python}
export PYTHONUNBUFFERED=1 PYTHONPATH=.
LOGS=${LOGS:-logs}; mkdir -p "$LOGS"
while read -r name args; do
  [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
  [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $name "* ]] || continue
  echo "$(date -u +%FT%T) start $name" >> "$LOGS/cpu-queue.log"
  eval "$PY -m drlib train --dataset $DATASET --profile $PROFILE --no-progress $args" >> "$LOGS/q-$name.log" 2>&1
  echo "$(date -u +%FT%T) end $name rc=$?" >> "$LOGS/cpu-queue.log"
done < "$JOBS"
