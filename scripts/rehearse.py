"""A year's run, rehearsed on one machine under a real scheduler (run by scripts/rehearse.sh).

Synthetic tiles of two bands go into SeaweedFS; a Slurm job array of shares
(scripts/slurm/build.sbatch) builds them into a store in SeaweedFS through a fault-injecting
proxy (tests/python/fault_proxy.py: 500s, connection resets, stalls, and a few tiles whose
first reads all fail), then finalize as an array of shares (scripts/slurm/finalize-share.sbatch),
the final finalize, the map's tiles as an array of shares (scripts/slurm/stac-share.sbatch)
and the plain stac (catalogue, page; it draws no tile the shares drew), each a dependent job
(afterok). While the
array runs, some tasks' mosaic processes are killed with SIGKILL (the task requeues itself) and one task is requeued by Slurm itself (scontrol requeue). Then the outcome
is checked against a single-process build of the same tiles (no proxy, no faults): every
object of the store (arrays, overviews, statistics, colour bases, metadata) and every file of
the catalogue and map equal byte for byte; each tile whose reads were made to fail is named in
a failure record; every task that was killed was requeued and completed. Prints the figures.

Needs root (it starts munged, slurmctld and slurmd on localhost) and Slurm's Debian packages
(scripts/setup.sh --tests installs them)."""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))
import fault_proxy  # noqa: E402
from seaweed import free_port, seaweed  # noqa: E402

BANDS = "60-70,70-80"
YEAR = 2024
# Attempts at each read (--read-retries 2), so READ_ATTEMPTS failing GETs fail a tile's first
# build attempt and no other.
READ_ATTEMPTS = 3


def log(msg):
    print(f"[rehearse {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def share_of(tile, n):
    """The 1-based worker share of a tile named grid_{lon}_{lat}: src/build/share.rs."""
    lon, lat = (float(x) for x in tile.removeprefix("grid_").split("_"))
    lat_index = round((lat - 0.05 + 90) * 10)
    lon_index = round((lon - 0.05 + 180) * 10)
    cell = lat_index * 3600 + lon_index
    return (((cell * 0x9E3779B97F4A7C15) % 2**64) >> 32) % n + 1


class Slurm:
    """munged, slurmctld and slurmd on localhost, all state under `home`; stopped on exit."""

    def __init__(self, home, cpus):
        self.home = Path(home)
        self.procs = []
        for d in ["key", "run", "state", "spool", "log"]:
            (self.home / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.home / "key", 0o700)
        os.chmod(self.home / "run", 0o755)
        self.conf = self.home / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        sock = self.home / "run" / "munge.socket"
        h = self.home
        self.conf.write_text(f"""\
# A one-node cluster on localhost for the rehearsal (scripts/rehearse.py): no cgroups, no
# accounting, every daemon run as root in the foreground with its state under {h}.
ClusterName=rehearsal
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
CredType=cred/munge
# Requeued jobs wait cred_expire + 1 s before they start again (120 s by default).
AuthInfo=socket={sock},cred_expire=5
SlurmUser=root
SlurmdUser=root
StateSaveLocation={h}/state
SlurmdSpoolDir={h}/spool
SlurmctldPidFile={h}/run/slurmctld.pid
SlurmdPidFile={h}/run/slurmd.pid
SlurmctldLogFile={h}/log/slurmctld.log
SlurmdLogFile={h}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
KillWait=2
MinJobAge=3600
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
        key = self.home / "key" / "munge.key"
        if not key.exists():
            run(["mungekey", "--create", "--keyfile", key, "--force"], stdout=subprocess.DEVNULL)
            os.chmod(key, 0o400)
        self._start(["munged", "--foreground", "--force", f"--socket={sock}", f"--key-file={key}",
                     f"--log-file={h}/log/munged.log", f"--pid-file={h}/run/munged.pid",
                     f"--seed-file={h}/run/munged.seed"], "munged")
        self._wait(lambda: sock.exists(), "munged's socket")
        self._start(["slurmctld", "-D", "-i"], "slurmctld")
        self._wait(lambda: self.query(["sinfo", "-h", "-o", "%T"]) is not None, "slurmctld")
        self._start(["slurmd", "-D", "-N", "localhost"], "slurmd")
        self._wait(lambda: (self.query(["sinfo", "-h", "-o", "%T"]) or "").strip() == "idle",
                   "the node to be idle")

    def _start(self, cmd, name):
        out = open(self.home / "log" / f"{name}.out", "w")
        self.procs.append((name, subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                                  env=self.env)))

    def _wait(self, ready, what, timeout=60):
        deadline = time.time() + timeout
        while not ready():
            for name, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with {p.returncode}:\n"
                                       + (self.home / "log" / f"{name}.out").read_text()[-3000:])
            if time.time() > deadline:
                raise RuntimeError(f"no {what} after {timeout} s; logs in {self.home / 'log'}")
            time.sleep(0.5)

    def query(self, cmd):
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else None

    def sbatch(self, args, env):
        out = subprocess.run(["sbatch", "--parsable", *args], env=dict(env, SLURM_CONF=str(self.conf)),
                             capture_output=True, text=True, check=True).stdout
        return out.strip().split(";")[0]

    def jobs(self, job):
        """{task or job id: {field: value}} from scontrol, one entry per array task."""
        text = self.query(["scontrol", "-o", "show", "job", job]) or ""
        out = {}
        for line in text.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            out[fields.get("ArrayTaskId") or fields["JobId"]] = fields
        return out

    def stop(self):
        for _, p in reversed(self.procs):
            p.terminate()
        for _, p in reversed(self.procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def digest_tree(fs, prefix):
    """{key under prefix: sha256} of every object (read directly, not through the proxy)."""
    out = {}
    for path in fs.find(prefix):
        out[path[len(prefix) + 1:]] = hashlib.sha256(fs.cat(path)).hexdigest()
    return out


def digest_folder(folder):
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class Injector(threading.Thread):
    """Kills the mosaic process of each task in `kill` with SIGKILL, `delay` seconds after it
    started, and has Slurm requeue each task in `requeue` (scontrol requeue: Slurm kills the
    whole task and queues it again), once each, on the task's first run."""

    def __init__(self, slurm, array, reports, kill, requeue, delay, record):
        super().__init__(daemon=True)
        self.slurm, self.array, self.reports = slurm, array, Path(reports)
        self.todo = {t: "SIGKILL" for t in kill} | {t: "requeue" for t in requeue}
        self.delay, self.record = delay, record
        self.done = []
        self.stop = threading.Event()

    def run(self):
        while self.todo and not self.stop.is_set():
            for task, how in list(self.todo.items()):
                pids = list(self.reports.glob(f"share-{task}-of-*.restart-0.try-1.pid"))
                if not pids:
                    continue
                started = pids[0].stat().st_mtime
                if time.time() - started < self.delay:
                    continue
                try:
                    pid = int(pids[0].read_text())
                except (ValueError, FileNotFoundError):
                    continue
                if how == "SIGKILL":
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        continue  # finished before the kill: try again never
                else:
                    subprocess.run(["scontrol", "requeue", f"{self.array}_{task}"],
                                   env=self.slurm.env, check=True)
                entry = {"task": task, "how": how, "pid": pid,
                         "after_seconds": round(time.time() - started, 2)}
                log(f"fault: task {task}: {how} (mosaic pid {pid})")
                self.done.append(entry)
                with open(self.record, "a") as f:
                    f.write(json.dumps(entry) + "\n")
                del self.todo[task]
            time.sleep(0.1)


def wait_job(slurm, job, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = {f.get("JobState") for f in slurm.jobs(job).values()}
        if states and states <= {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
                                 "OUT_OF_MEMORY"}:
            return states
        time.sleep(1)
    raise RuntimeError(f"job {job} not done after {timeout} s: {slurm.jobs(job)}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, required=True, help="a folder for everything (emptied)")
    p.add_argument("--bbox", default="10.0,69.9,10.2,70.1",
                   help="cells to synthesise (both sides of 70N: two bands)")
    p.add_argument("--shares", type=int, default=16)
    p.add_argument("--finalize-shares", type=int, default=4,
                   help="shares of the finalize array (then the final step)")
    p.add_argument("--stac-shares", type=int, default=3,
                   help="shares of the map's tiles (then the plain stac job)")
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the Slurm node")
    p.add_argument("--threads", type=int, default=1, help="threads per share")
    p.add_argument("--kills", type=int, default=1, help="tasks whose mosaic gets SIGKILL")
    p.add_argument("--requeues", type=int, default=1, help="tasks Slurm requeues while running")
    p.add_argument("--hard", type=int, default=1, help="tiles whose first reads all fail")
    p.add_argument("--fault-rate", type=float, default=0.08,
                   help="share of requests answered 500, reset or stalled")
    p.add_argument("--stall", type=float, default=7.0, help="seconds a stalled request waits")
    p.add_argument("--read-timeout", type=int, default=5, help="seconds")
    p.add_argument("--kill-delay", type=float, default=0.7,
                   help="seconds after a share's mosaic starts that it is killed")
    p.add_argument("--timeout", type=float, default=1800, help="seconds for the whole array")
    p.add_argument("--trace", action="store_true", help="log every request, not only faults")
    p.add_argument("--summary", type=Path, help="write the figures and checks here (JSON)")
    a = p.parse_args()

    mosaic = Path(os.environ.get("MOSAIC_BIN", ROOT / "target" / "release" / "mosaic")).resolve()
    work = a.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tiles = work / "tiles"
    run([mosaic, "synth", "--out", tiles, "--bbox", a.bbox, "--years", YEAR,
         "--land-fraction", "1.0"], stdout=subprocess.DEVNULL)
    run([mosaic, "manifest", "--input", tiles], stdout=subprocess.DEVNULL)
    names = sorted(d.name for d in (tiles / str(YEAR)).iterdir())
    shares = {t: share_of(t, a.shares) for t in names}
    busy = sorted(set(shares.values()))
    log(f"{len(names)} tiles, in shares {busy} of {a.shares}")
    # The hard tiles, then the killed and requeued tasks among the other busy shares (a kill
    # between a hard tile's failing reads would spread them over two attempts).
    hard = names[: a.hard]
    free = [s for s in busy if s not in {shares[t] for t in hard}]
    kill, requeue = free[: a.kills], free[a.kills: a.kills + a.requeues]
    summary = {"machine": f"{os.cpu_count()} cores (shared)", "tiles": len(names),
               "shares": a.shares, "busy_shares": busy, "hard_tiles": hard}

    with seaweed(work / "seaweed", bucket="tessera") as s3:
        fs = s3["fs"]
        fs.mkdir("store")
        t = time.time()
        fs.put(str(tiles) + "/", "tessera/npy", recursive=True)
        log(f"uploaded the tiles in {time.time() - t:.1f} s")

        # The single-process build: the same tiles, straight from and into SeaweedFS, no faults.
        env_direct = dict(os.environ, **s3["env"])
        href = "--href-base=https://example.org/tessera.zarr"
        t = time.time()
        run([mosaic, "build", "--input", "s3://tessera/npy", "--out", "s3://store/reference.zarr",
             "--band", BANDS, "--threads", a.cpus], env=env_direct, stdout=subprocess.DEVNULL)
        summary["reference_build_s"] = round(time.time() - t, 1)
        t = time.time()
        run([mosaic, "finalize", "--store", "s3://store/reference.zarr"], env=env_direct,
            stdout=subprocess.DEVNULL)
        summary["reference_finalize_s"] = round(time.time() - t, 1)
        t = time.time()
        run([mosaic, "stac", "--store", "s3://store/reference.zarr", "--out", work / "stac-reference",
             href], env=env_direct, stdout=subprocess.DEVNULL)
        summary["reference_stac_s"] = round(time.time() - t, 1)

        proxy_log = work / "faults.jsonl"
        port = free_port()
        proxy = fault_proxy.start(s3["endpoint"], port, proxy_log, rate=a.fault_rate, seed=28,
                                  stall=a.stall, hard=[f"{h}.npy" for h in hard],
                                  hard_count=READ_ATTEMPTS, trace=a.trace)
        endpoint = f"http://127.0.0.1:{port}"
        slurm = Slurm(work / "slurm", a.cpus)
        try:
            reports = work / "reports"
            env = dict(os.environ, **s3["env"])
            env.update(AWS_ENDPOINT_URL=endpoint, MOSAIC=str(mosaic), MOSAIC_TRIES="5",
                       MOSAIC_INPUT="s3://tessera/npy", MOSAIC_SHARES=str(a.shares), MOSAIC_STORE="s3://store/run.zarr",
                       MOSAIC_BANDS=BANDS, MOSAIC_REPORTS=str(reports),
                       MOSAIC_STAC_OUT=str(work / "stac-run"), MOSAIC_STAC_ARGS=href,
                       MOSAIC_BUILD_ARGS=f"--threads {a.threads} --read-retries {READ_ATTEMPTS - 1} "
                                         f"--read-timeout {a.read_timeout}")
            logs = work / "logs"
            logs.mkdir()
            t0 = time.time()
            array = slurm.sbatch([f"--array=1-{a.shares}", f"--cpus-per-task={a.threads}",
                                  f"--output={logs}/build-%a.out",
                                  ROOT / "scripts/slurm/build.sbatch"], env)
            shares = slurm.sbatch([f"--array=1-{a.finalize_shares}", f"--dependency=afterok:{array}",
                                   "--kill-on-invalid-dep=yes", f"--output={logs}/finalize-share-%a.out",
                                   ROOT / "scripts/slurm/finalize-share.sbatch"],
                                  dict(env, MOSAIC_FINALIZE_SHARES=str(a.finalize_shares)))
            fin = slurm.sbatch([f"--dependency=afterok:{shares}", "--kill-on-invalid-dep=yes",
                                f"--output={logs}/finalize.out",
                                ROOT / "scripts/slurm/finalize.sbatch"], env)
            stac_shares = slurm.sbatch([f"--array=1-{a.stac_shares}", f"--dependency=afterok:{fin}",
                                        "--kill-on-invalid-dep=yes",
                                        f"--output={logs}/stac-share-%a.out",
                                        ROOT / "scripts/slurm/stac-share.sbatch"],
                                       dict(env, MOSAIC_STAC_SHARES=str(a.stac_shares)))
            stac = slurm.sbatch([f"--dependency=afterok:{stac_shares}", "--kill-on-invalid-dep=yes",
                                 f"--output={logs}/stac.out", ROOT / "scripts/slurm/stac.sbatch"], env)
            log(f"submitted: array {array} (1-{a.shares}), finalize shares {shares} "
                f"(1-{a.finalize_shares}), finalize {fin}, stac shares {stac_shares} "
                f"(1-{a.stac_shares}), stac {stac}; "
                f"SIGKILL for tasks {kill}, scontrol requeue for {requeue}")
            injector = Injector(slurm, array, reports, kill, requeue, a.kill_delay,
                                work / "kills.jsonl")
            injector.start()
            wait_job(slurm, array, a.timeout)
            t_array = time.time()
            injector.stop.set()
            wait_job(slurm, shares, 600)
            t_shares = time.time()
            wait_job(slurm, fin, 600)
            t_fin = time.time()
            wait_job(slurm, stac_shares, 600)
            t_stac_shares = time.time()
            wait_job(slurm, stac, 600)
            t_stac = time.time()
            tasks, fin_job, stac_job = slurm.jobs(array), slurm.jobs(fin), slurm.jobs(stac)
            share_jobs, stac_share_jobs = slurm.jobs(shares), slurm.jobs(stac_shares)
        finally:
            slurm.stop()
            proxy.shutdown()
        summary |= {"array_s": round(t_array - t0, 1),
                    "finalize_shares_s": round(t_shares - t_array, 1),
                    "finalize_job_s": round(t_fin - t_shares, 1),
                    "stac_shares_s": round(t_stac_shares - t_fin, 1),
                    "stac_job_s": round(t_stac - t_stac_shares, 1)}

        # The checks.
        problems = []
        for name, jobs in [("array", tasks), ("finalize share", share_jobs), ("finalize", fin_job),
                           ("stac share", stac_share_jobs), ("stac", stac_job)]:
            for task, f in sorted(jobs.items()):
                if f.get("JobState") != "COMPLETED":
                    problems.append(f"{name} {task}: {f.get('JobState')} ({f.get('ExitCode')}); "
                                    f"log in {logs}")
        restarts = {task: int(f.get("Restarts", 0)) for task, f in tasks.items()}
        summary["restarts"] = {k: v for k, v in restarts.items() if v}
        for entry in injector.done:
            if restarts.get(str(entry["task"]), 0) < 1:
                problems.append(f"task {entry['task']} got {entry['how']} but was not requeued")
        for task in kill + requeue:
            if task not in [e["task"] for e in injector.done]:
                problems.append(f"task {task} was to get a fault but finished before it")
        summary["kills"] = injector.done

        faults = fault_proxy.read_log(proxy_log)
        kinds = {}
        for f in faults:
            kinds[f["fault"]] = kinds.get(f["fault"], 0) + 1
        summary["faults_injected"] = kinds
        failed = []
        for report in sorted(reports.glob("*.json")):
            for tile in json.loads(report.read_text())["failed"]:
                failed.append({"report": report.name, "path": tile["path"],
                               "reason": tile["reason"]})
        summary["failures_recorded"] = failed
        faulted_paths = {f["path"] for f in faults if f["method"] == "GET"}
        for h in hard:
            if not any(f"{h}.npy" in f["path"] for f in failed):
                problems.append(f"tile {h}: every read failed, but no record names it")
        for f in failed:
            if not f["reason"] or not any(f["path"].endswith(p) for p in faulted_paths):
                problems.append(f"{f['report']}: failure of {f['path']} not caused by a fault: "
                                f"{f['reason']}")

        # The store and the catalogue against the single-process build.
        ref, got = digest_tree(fs, "store/reference.zarr"), digest_tree(fs, "store/run.zarr")
        records = [k for k in got if k.startswith("_mosaic/failures/")]
        for k in records:
            record = json.loads(fs.cat(f"store/run.zarr/{k}"))
            if record["failed"] or record["input_problems"]:
                problems.append(f"{k} still lists failures: {record}")
        ref = {k: v for k, v in ref.items() if not k.startswith("_mosaic/failures/")}
        got = {k: v for k, v in got.items() if not k.startswith("_mosaic/failures/")}
        for k in sorted(set(ref) | set(got)):
            if ref.get(k) != got.get(k):
                problems.append(f"store object {k}: " + ("missing" if k not in got else
                                                         "extra" if k not in ref else "differs"))
        summary["store_objects"] = len(got)
        summary["statistics_objects"] = sum("statistics" in k for k in got)
        summary["colour_bases"] = sorted(k for k in got if k.startswith("_mosaic/colour/"))
        summary["finalize_partials"] = sum(k.startswith("_mosaic/finalize/") for k in got)
        if not summary["colour_bases"]:
            problems.append("no colour basis in the store")
        cref, cgot = digest_folder(work / "stac-reference"), digest_folder(work / "stac-run")
        for k in sorted(set(cref) | set(cgot)):
            if cref.get(k) != cgot.get(k):
                problems.append(f"catalogue file {k}: " + ("missing" if k not in cgot else
                                                           "extra" if k not in cref else "differs"))
        summary["catalogue_files"] = len(cgot)
        # The shares drew every tile: the plain stac after them draws none (it keeps theirs).
        stac_log = (logs / "stac.out").read_text(errors="replace")
        drawn = re.findall(r"tiles: (\d+) rendered", stac_log)
        summary["stac_tiles_rendered_after_shares"] = [int(d) for d in drawn]
        if not drawn or drawn[-1] != "0":
            problems.append(f"the stac job after its shares drew tiles ({drawn}); log {logs}/stac.out")
        summary["problems"] = problems

    text = json.dumps(summary, indent=1)
    print(text)
    if a.summary:
        a.summary.write_text(text)
    if problems:
        log(f"FAILED: {len(problems)} problems")
        for problem in problems[:40]:
            print("  " + problem)
        if len(problems) > 40:
            print(f"  ... and {len(problems) - 40} more")
        return 1
    log(f"passed: {len(names)} tiles in {a.shares} shares under Slurm with {sum(kinds.values())} "
        f"store faults, {len(injector.done)} killed tasks and {len(failed)} recorded tile "
        f"failures; the store ({len(got)} objects) and catalogue ({len(cgot)} files) equal the "
        "single-process build byte for byte")
    return 0


if __name__ == "__main__":
    sys.exit(main())
