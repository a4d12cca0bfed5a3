#!/usr/bin/env bash
# Brings up, idempotently, a single-node Slurm cluster on this machine for integration tests:
#   - installs the Debian packages `slurm-wlm` and `munge` when `sbatch` is missing;
#   - writes a minimal slurm.conf (one node named after `hostname -s`, with the CPUs and
#     memory `slurmd -C` reports, and one partition `debug`), without cgroups or accounting,
#     so that it also works inside containers;
#   - starts munged, slurmctld and slurmd directly (no systemd needed);
#   - waits until the node is idle and prints `slurm ready: partition debug, node X, N cpus`.
# Safe to run again: when the cluster already answers, it only prints the ready line.
# Needs Debian or Ubuntu and root, or sudo.
# Environment: SLURM_CONF overrides where slurm.conf is written (default: the path the
# installed Slurm was built with, usually /etc/slurm/slurm.conf). SLURM_LOCAL_TIMEOUT is
# how many seconds to wait for the node (default 60). SLURM_LOCAL_FORCE=1 overwrites a
# slurm.conf this script did not write.
# Daemon logs: /var/log/slurm/slurmctld.log, /var/log/slurm/slurmd.log, /var/log/munge/munged.log.
set -euo pipefail

say() { printf '[slurm-local] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
trap 'say "error: command failed (line $LINENO): $BASH_COMMAND"' ERR

partition=debug
timeout=${SLURM_LOCAL_TIMEOUT:-60}
marker="# Written by slurm-local.sh"
node=$(hostname -s 2>/dev/null || true)
case "$node" in ""|*[!A-Za-z0-9_-]*) node=localhost ;; esac

# --- privileges ----------------------------------------------------------------------
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "run this script as root or install sudo"
  sudo="sudo"
fi
# Runs a command as another system user (munged runs as `munge`, which owns its key).
as_user() {
  local user=$1; shift
  if [ -z "$sudo" ] && command -v runuser >/dev/null 2>&1; then runuser -u "$user" -- "$@"
  else sudo -u "$user" -- "$@"; fi
}

# Prints the node's state as sinfo reports it (idle, mix, down*, drain, ...) or nothing.
node_state() { timeout 10 sinfo -h -p "$partition" -n "$node" -o %t 2>/dev/null | head -n1 || true; }
is_usable() { case "$1" in idle|mix|alloc|comp) return 0 ;; *) return 1 ;; esac; }
ready() {
  local cpus
  cpus=$(timeout 10 sinfo -h -p "$partition" -n "$node" -o %c 2>/dev/null | head -n1)
  echo "slurm ready: partition $partition, node $node, ${cpus:-?} cpus"
}

# Is the daemon whose pid file is $1 (/run/NAME.pid) running? A stale pid file whose
# number now belongs to another program does not count.
running() {
  local pid name
  name=$(basename "$1" .pid)
  pid=$($sudo cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]
}
# Stops the daemon whose pid file is $1, waiting up to 10 s.
stop() {
  running "$1" || return 0
  $sudo kill "$($sudo cat "$1")" 2>/dev/null || true
  for _ in $(seq 50); do running "$1" || return 0; sleep 0.2; done
  die "could not stop the daemon of $1"
}

# --- already running? ----------------------------------------------------------------
# (Checking the pid files first avoids sinfo's ~10 s of retries when no slurmctld runs.)
if running /run/slurmctld.pid && running /run/slurmd.pid && command -v sinfo >/dev/null 2>&1 \
   && is_usable "$(node_state)"; then
  ready
  exit 0
fi

# --- packages --------------------------------------------------------------------------
if ! command -v sbatch >/dev/null 2>&1 || ! command -v slurmctld >/dev/null 2>&1 \
   || ! command -v slurmd >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "Slurm is not installed and apt-get is missing (Debian or Ubuntu needed)"
  say "installing Debian packages: slurm-wlm munge"
  $sudo apt-get update -qq || die "apt-get update failed"
  # The packages' post-install scripts try to start the services; without systemd
  # (containers) invoke-rc.d just declines, which is harmless.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
fi
for tool in sbatch sinfo scontrol slurmctld slurmd munged munge unmunge; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found after installation"
done
slurm_version=$($sudo slurmd -V 2>/dev/null || true)
say "using ${slurm_version:-slurm (unknown version)}"

# --- slurm.conf ----------------------------------------------------------------------
# Where the client tools look for the configuration: the path compiled into libslurm
# (/etc/slurm/slurm.conf on current Debian and Ubuntu, /etc/slurm-llnl/ on older ones).
conf=${SLURM_CONF:-}
if [ -z "$conf" ]; then
  lib=$(ldd "$(command -v sinfo)" 2>/dev/null | awk '/libslurm/ { print $3; exit }' || true)
  if [ -n "$lib" ] && [ -r "$lib" ]; then
    conf=$(grep -aoE '/etc/slurm[A-Za-z_-]*/slurm\.conf' "$lib" | head -n1 || true)
  fi
  conf=${conf:-/etc/slurm/slurm.conf}
fi
confdir=$(dirname "$conf")

# The slurm user comes with the Debian package; run everything as root otherwise.
if id slurm >/dev/null 2>&1; then slurm_user=slurm; else slurm_user=root; fi

# The node's hardware as slurmd itself detects it, so that slurmd never finds the node
# "smaller than configured" and drains it.
hw=$($sudo slurmd -C 2>/dev/null | head -n1 | sed -E 's/^NodeName=[^ ]+ ?//' || true)
if ! grep -q 'CPUs=' <<<"$hw"; then
  mem=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
  hw="CPUs=$(nproc) RealMemory=$mem"
fi

spool_ctld=/var/spool/slurmctld
spool_d=/var/spool/slurmd
logdir=/var/log/slurm
new_conf="$marker: a single-node cluster for local tests.
ClusterName=local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=$slurm_user
AuthType=auth/munge
MpiDefault=none
# No cgroups (often unavailable in containers), no accounting database.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
# Cores are consumable, memory is not: jobs without --mem do not each claim the whole node.
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$spool_ctld
SlurmdSpoolDir=$spool_d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$logdir/slurmctld.log
SlurmdLogFile=$logdir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No mail in tests; an existing program keeps slurmctld from logging an error.
MailProg=/bin/true
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node $hw State=UNKNOWN
PartitionName=$partition Nodes=$node Default=YES MaxTime=INFINITE State=UP
"

if [ -f "$conf" ] && ! grep -qF "$marker" "$conf" && [ "${SLURM_LOCAL_FORCE:-0}" != 1 ]; then
  die "$conf exists and was not written by this script (set SLURM_LOCAL_FORCE=1 to replace it)"
fi
conf_changed=0
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$(printf '%s' "$new_conf")" ]; then
  say "writing $conf"
  $sudo mkdir -p "$confdir"
  printf '%s' "$new_conf" | $sudo tee "$conf" >/dev/null
  $sudo chmod 644 "$conf"
  conf_changed=1
fi
$sudo mkdir -p "$spool_ctld" "$spool_d" "$logdir"
$sudo chown "$slurm_user:" "$spool_ctld" "$logdir"
$sudo chmod 755 "$spool_ctld" "$spool_d" "$logdir"

# --- munge ---------------------------------------------------------------------------
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  id munge >/dev/null 2>&1 || die "the munge user does not exist (is the munge package installed?)"
  $sudo mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
  $sudo chown munge: /etc/munge /run/munge /var/lib/munge /var/log/munge
  $sudo chmod 700 /etc/munge /var/lib/munge /var/log/munge
  $sudo chmod 755 /run/munge
  if [ ! -f /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null 2>&1; then
      as_user munge mungekey --create --keyfile=/etc/munge/munge.key
    else
      $sudo dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
  fi
  $sudo chown munge: /etc/munge/munge.key
  $sudo chmod 400 /etc/munge/munge.key
  say "starting munged"
  # --force: start even when a stale socket from an earlier run is left behind.
  as_user munge "$(command -v munged)" --force || die "munged failed to start (see /var/log/munge/munged.log)"
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.2
  done
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# --- slurmctld and slurmd ---------------------------------------------------------------
if [ "$conf_changed" = 1 ]; then
  # A changed node definition needs fresh daemons (scontrol reconfigure does not cover it).
  stop /run/slurmd.pid
  stop /run/slurmctld.pid
fi
if ! running /run/slurmctld.pid; then
  say "starting slurmctld (log: $logdir/slurmctld.log)"
  $sudo slurmctld -f "$conf" || die "slurmctld failed to start; last lines of $logdir/slurmctld.log:
$($sudo tail -n 20 "$logdir/slurmctld.log" 2>/dev/null)"
fi
if ! running /run/slurmd.pid; then
  say "starting slurmd (log: $logdir/slurmd.log)"
  $sudo slurmd -f "$conf" -N "$node" || die "slurmd failed to start; last lines of $logdir/slurmd.log:
$($sudo tail -n 20 "$logdir/slurmd.log" 2>/dev/null)"
fi

# --- wait for the node ---------------------------------------------------------------
start=$SECONDS
state=""
while [ $((SECONDS - start)) -lt "$timeout" ]; do
  state=$(node_state)
  if is_usable "$state"; then
    ready
    exit 0
  fi
  case "$state" in
    # Left down or drained by an earlier run: slurmd is up, so put the node back in service.
    down|drain|drng|drained|fail)
      $sudo env SLURM_CONF="$conf" scontrol update nodename="$node" state=resume 2>/dev/null || true ;;
  esac
  running /run/slurmctld.pid || die "slurmctld exited; last lines of $logdir/slurmctld.log:
$($sudo tail -n 20 "$logdir/slurmctld.log" 2>/dev/null)"
  running /run/slurmd.pid || die "slurmd exited; last lines of $logdir/slurmd.log:
$($sudo tail -n 20 "$logdir/slurmd.log" 2>/dev/null)"
  sleep 1
done
die "node $node is not idle after ${timeout}s (state: '${state:-unknown}'); see $logdir/slurmctld.log and $logdir/slurmd.log"
