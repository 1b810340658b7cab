#!/usr/bin/env bash
# A throwaway one-node SLURM cluster on this machine, so that convae's SLURM path
# (hydra/launcher=submitit_slurm) can run against the real sbatch, srun and scancel.
#
#   scripts/slurm-local.sh up       install slurm-wlm and munge if missing (root with apt),
#                                   start munged, slurmctld and slurmd, wait for an idle node
#   scripts/slurm-local.sh down     stop the daemons it started (by their pid files) and
#                                   remove its folder; nothing to stop is not an error
#   scripts/slurm-local.sh status   up or down, one line
#
# Everything lives in $SLURM_LOCAL_DIR (default /tmp/convae-slurm): munge key and socket,
# slurm.conf, state, spool, logs, pid files. Clients find the cluster through
# SLURM_CONF=$SLURM_LOCAL_DIR/slurm.conf, which `up` prints as an export line.
# Where it cannot run (not root, no apt, a daemon that does not start) it says so in one
# line on stderr and exits 2, so that a caller can skip with that reason.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/convae-slurm}
CONF=$DIR/slurm.conf
DAEMONS=(slurmd slurmctld munged) # stopped in this order

cannot() {
    echo "slurm-local: cannot run: $*" >&2
    exit 2
}

alive() { # alive <name>: its pid file names a live process
    local pidfile=$DIR/$1.pid
    [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

install_packages() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return
    [[ $(id -u) == 0 ]] || cannot "slurm-wlm and munge are not installed, and installing them needs root"
    command -v apt-get >/dev/null || cannot "slurm-wlm and munge are not installed, and there is no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1; } ||
        cannot "apt-get install slurm-wlm munge failed"
}

write_config() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc --all) # the machine's, not this process's affinity (a pinned test worker)
    mem_mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 * 9 / 10))
    mkdir -p "$DIR"/{state,spool,munge}
    chmod 700 "$DIR" "$DIR/munge"
    [[ -s $DIR/munge.key ]] || { head -c 1024 /dev/urandom >"$DIR/munge.key" && chmod 400 "$DIR/munge.key"; }
    cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh: one node, this host, daemons as root, no accounting.
ClusterName=convae-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire: a requeued job waits this long (+1 s) to start again; the default is 120 s
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=10
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

up() {
    if alive slurmctld && alive slurmd && alive munged; then
        echo "slurm-local: already up ($DIR)"
        echo "export SLURM_CONF=$CONF"
        return
    fi
    down quiet # a half-started cluster from before: start clean
    install_packages
    write_config
    munged --force --key-file="$DIR/munge.key" --socket="$DIR/munge/munge.socket" \
        --pid-file="$DIR/munged.pid" --log-file="$DIR/munged.log" --seed-file="$DIR/munge.seed" ||
        cannot "munged did not start (see $DIR/munged.log)"
    slurmctld -f "$CONF" || cannot "slurmctld did not start (see $DIR/slurmctld.log)"
    slurmd -f "$CONF" || cannot "slurmd did not start (see $DIR/slurmd.log)"
    local state=""
    for _ in $(seq 1 60); do
        state=$(SLURM_CONF=$CONF sinfo -h -o %T 2>/dev/null || true)
        [[ $state == idle ]] && break
        sleep 0.5
    done
    [[ $state == idle ]] || cannot "the node is '${state:-unknown}', not idle, after 30 s (logs in $DIR)"
    echo "slurm-local: up, one node with $(nproc --all) CPUs ($DIR)"
    echo "export SLURM_CONF=$CONF"
}

stray_pids() { # this cluster's job steps and job processes (their env names its slurm.conf)
    local p env
    for p in /proc/[0-9]*; do
        env=$(tr '\0' '\n' 2>/dev/null <"$p/environ") || continue
        grep -qxF "SLURM_CONF=$CONF" <<<"$env" || continue
        if grep -q '^SLURM_JOB_ID=' <<<"$env" || [[ $(cat "$p/comm" 2>/dev/null) == slurmstepd ]]; then
            echo "${p#/proc/}"
        fi
    done
}

down() {
    local name pid stopped=0 strays=0 jobs
    if alive slurmctld; then # cancel what still runs, so that its steps end while slurmd is up
        jobs=$(SLURM_CONF=$CONF squeue -h -o %i 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086
            SLURM_CONF=$CONF scancel $jobs 2>/dev/null || true
            for _ in $(seq 1 50); do
                [[ -z $(SLURM_CONF=$CONF squeue -h -o %i 2>/dev/null) ]] && break
                sleep 0.2
            done
        fi
    fi
    for name in "${DAEMONS[@]}"; do
        alive "$name" || continue
        pid=$(cat "$DIR/$name.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        stopped=$((stopped + 1))
    done
    for pid in $(stray_pids); do # left behind once slurmd was gone (a step that hung)
        kill -9 "$pid" 2>/dev/null && strays=$((strays + 1))
    done
    rm -rf "$DIR"
    [[ ${1:-} == quiet ]] || echo "slurm-local: down ($stopped daemons stopped, $strays stray job processes killed, $DIR removed)"
}

status() {
    if alive slurmctld && alive slurmd && alive munged; then
        echo "slurm-local: up ($DIR): $(SLURM_CONF=$CONF sinfo -h -o '%P %T %c CPUs' 2>&1)"
    else
        echo "slurm-local: down"
    fi
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 64
    ;;
esac
