#!/usr/bin/env python3
"""test/bench/bench.py: the SQL-level benchmarks of ducto and their reports (driven by test/bench/run.sh).

    bench.py price  --out DIR [--db D] [--rows N] [--rounds R]
    bench.py ledger --out DIR [--db D] [--users N] [--rounds R] [--seconds T]
    bench.py events --out DIR [--db D] [--users N] [--rounds R] [--seconds T]
    bench.py expr   --out DIR --json FILE      (summarizes the Google Benchmark JSON of bench_expr)

Every figure is compared with a baseline measured in the same run, on the same server, in alternating
order (the order of the variants rotates from round to round), and reported as the median of the
rounds. Nothing here asserts on time: the targets of the issues are printed next to the figures.
The server comes from the PG* environment (run.sh starts a throwaway one); the raw samples, the
pgbench logs and a summary.txt go to --out.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
# The credits every benchmark operation moves: {"input_tokens": 100} at 0.001 per token.
CHARGE_AMOUNT = Decimal("0.1")


# ---- helpers -------------------------------------------------------------------------------------------

def psql(db: str, sql: str, *, env: dict | None = None) -> str:
    """Runs SQL in one session and returns its unaligned, tuples-only output."""
    result = subprocess.run([str(PGBIN / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"psql failed: {sql}\n{result.stderr}")
    return result.stdout.strip()


def psql_file(db: str, path: Path, variables: dict[str, str], log: Path) -> None:
    args = [str(PGBIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", str(path)]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    with log.open("w") as out:
        if subprocess.run(args, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
            sys.exit(f"{path.name} failed, see {log}")


def host() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    commit = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    return [f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
            f"machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}",
            f"ducto commit: {commit}"]


def machine(db: str) -> list[str]:
    settings = psql(db, "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) "
                        "FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', "
                        "'max_parallel_workers_per_gather', 'jit', 'shared_preload_libraries')")
    return [*host(), f"server: {psql(db, 'SELECT version()')}", f"settings: {settings}"]


def rotated(items: list, round_index: int) -> list:
    """The round's order: a rotation, so no variant always runs first (cold) or right after another."""
    shift = round_index % len(items)
    return items[shift:] + items[:shift]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> str:
    return f"{min(values):.0f}-{max(values):.0f}" if values else "-"


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}" if denominator else "n/a"


def write_samples(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out, delimiter="\t")
        writer.writerow(header)
        writer.writerows(rows)


def report(out: Path, lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(text)
    print(text, end="")


# ---- price (issue 2 (b)) -------------------------------------------------------------------------------

PLAIN_NUMBER = "round((m->>'input_tokens')::numeric * 0.001 + (m->>'output_tokens')::numeric * 0.003, 6)"
# The document ducto.price returns for this config, built in plain SQL: the model key it resolves to
# (every row falls back to _default) and the six amounts with 6 places.
PLAIN_BREAKDOWN = ("jsonb_build_object('model', '_default', 'model_credits', c, 'tool_credits', 0.000000, "
                   "'search_credits', 0.000000, 'cache_credits', 0.000000, 'fixed_credits', 0.000000, 'total', c)")
BREAKDOWN_FROM = f"usage_rows, LATERAL (SELECT {PLAIN_NUMBER} AS c) AS x"


@dataclass(frozen=True)
class Query:
    shape: str    # count: aggregated in the server; fetch: every row sent to and parsed by the client
    variant: str
    sql: str


PRICE_QUERIES = [
    Query("count", "scan only: count(m)", "SELECT count(m) FROM usage_rows"),
    Query("count", "ducto.price(m)", "SELECT count(ducto.price(m)) FROM usage_rows"),
    Query("count", "plain SQL number", f"SELECT count({PLAIN_NUMBER}) FROM usage_rows"),
    Query("count", "plain SQL breakdown jsonb", f"SELECT count({PLAIN_BREAKDOWN}) FROM {BREAKDOWN_FROM}"),
    Query("fetch", "ducto.price(m)", "SELECT ducto.price(m) FROM usage_rows"),
    Query("fetch", "plain SQL number", f"SELECT {PLAIN_NUMBER} FROM usage_rows"),
    Query("fetch", "plain SQL breakdown jsonb", f"SELECT {PLAIN_BREAKDOWN} FROM {BREAKDOWN_FROM}"),
]


def price_setup(db: str, rows: int) -> None:
    psql(db, "CREATE EXTENSION IF NOT EXISTS ducto")
    psql(db, """SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 0.001 + output_tokens * 0.003"}}',
                                         'bench price')""")
    # Model names the config does not know: each row resolves to _default, as in the plain SQL.
    psql(db, f"""DROP TABLE IF EXISTS usage_rows;
        SELECT setseed(0.42);
        CREATE TABLE usage_rows AS
        SELECT g AS id,
               jsonb_build_object('model', (ARRAY['gpt-4o', 'claude-3-5', 'llama-3', 'mistral-large'])[1 + g % 4],
                                  'input_tokens', (random() * 100000)::int,
                                  'output_tokens', (random() * 10000)::int) AS m
        FROM generate_series(1, {rows}) AS g""")
    psql(db, "VACUUM ANALYZE usage_rows")


def price_check(db: str, rows: int) -> str:
    """The comparison is only fair if both sides compute the same thing: ducto.price must equal the
    plain SQL breakdown, document for document."""
    differing = psql(db, f"SELECT count(*) FROM {BREAKDOWN_FROM} WHERE ducto.price(m) <> {PLAIN_BREAKDOWN}")
    if differing != "0":
        sys.exit(f"price: ducto.price differs from the plain SQL breakdown on {differing} of {rows} rows")
    return f"check: ducto.price(m) = the plain SQL breakdown on all {rows} rows"


def price_script(rounds: int) -> tuple[str, list[tuple[int, int]]]:
    """A psql script timing every query once per round (\\timing: until the whole result is in the
    client, before printing, which goes to /dev/null). One untimed warm-up pass first."""
    lines = ["SET max_parallel_workers_per_gather = 0;", "\\o /dev/null", "\\timing on"]
    lines += [q.sql + ";" for q in PRICE_QUERIES]
    order: list[tuple[int, int]] = []
    for round_index in range(rounds):
        for index in rotated(list(range(len(PRICE_QUERIES))), round_index):
            lines += [f"\\echo SAMPLE {round_index} {index}", PRICE_QUERIES[index].sql + ";"]
            order.append((round_index, index))
    return "\n".join(lines) + "\n", order


def parse_timings(output: str) -> list[tuple[int, int, float]]:
    samples, current = [], None
    for line in output.splitlines():
        if line.startswith("SAMPLE "):
            _, round_index, index = line.split()
            current = (int(round_index), int(index))
        elif current and (match := re.match(r"Time: ([\d.]+) ms", line)):
            samples.append((*current, float(match.group(1))))
            current = None
    return samples


def run_price(args: argparse.Namespace) -> None:
    out = args.out
    price_setup(args.db, args.rows)
    check = price_check(args.db, args.rows)
    script, order = price_script(args.rounds)
    (out / "price.psql").write_text(script)
    result = subprocess.run([str(PGBIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", args.db,
                             "-f", str(out / "price.psql")], capture_output=True, text=True)
    (out / "psql.log").write_text(result.stdout + result.stderr)
    samples = parse_timings(result.stdout)
    if result.returncode != 0 or len(samples) != len(order):
        sys.exit(f"price: psql failed or timings missing, see {out / 'psql.log'}")
    write_samples(out / "samples.tsv", ["round", "shape", "variant", "ms"],
                  [[r, PRICE_QUERIES[i].shape, PRICE_QUERIES[i].variant, ms] for r, i, ms in samples])

    medians = {i: median([ms for _, j, ms in samples if j == i]) for i in range(len(PRICE_QUERIES))}
    by_name = {(q.shape, q.variant): medians[i] for i, q in enumerate(PRICE_QUERIES)}
    lines = ["== price: ducto.price over usage rows vs the same arithmetic in plain SQL (issue 2 (b)) ==",
             *machine(args.db),
             f"rows: {args.rows}; rounds: {args.rounds} (alternating, one untimed warm-up pass); "
             "one psql session, \\timing, max_parallel_workers_per_gather = 0",
             check, "",
             f"{'shape':<6} {'query':<28} {'median ms':>10} {'min-max ms':>12} {'us/row':>8} {'rows/s':>11}"]
    for i, q in enumerate(PRICE_QUERIES):
        values = [ms for _, j, ms in samples if j == i]
        lines.append(f"{q.shape:<6} {q.variant:<28} {medians[i]:>10.1f} "
                     f"{min(values):>5.1f}-{max(values):<6.1f} {1000 * medians[i] / args.rows:>8.3f} "
                     f"{args.rows / medians[i] * 1000:>11,.0f}")
    scan = by_name[("count", "scan only: count(m)")]
    lines += ["",
              "ratios (time of ducto.price / time of the plain SQL; the target is <= 2.0 for the count shape):",
              f"  count: ducto.price / plain number    = "
              f"{ratio(by_name[('count', 'ducto.price(m)')], by_name[('count', 'plain SQL number')])}"
              "   (target <= 2.0)",
              f"  count: ducto.price / plain breakdown = "
              f"{ratio(by_name[('count', 'ducto.price(m)')], by_name[('count', 'plain SQL breakdown jsonb')])}",
              f"  fetch: ducto.price / plain number    = "
              f"{ratio(by_name[('fetch', 'ducto.price(m)')], by_name[('fetch', 'plain SQL number')])}",
              f"  fetch: ducto.price / plain breakdown = "
              f"{ratio(by_name[('fetch', 'ducto.price(m)')], by_name[('fetch', 'plain SQL breakdown jsonb')])}",
              f"  per row, scan excluded: ducto.price "
              f"{1000 * (by_name[('count', 'ducto.price(m)')] - scan) / args.rows:.3f} us, plain number "
              f"{1000 * (by_name[('count', 'plain SQL number')] - scan) / args.rows:.3f} us"]
    report(out, lines)


# ---- pgbench (issues 3 and 4) -------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    script: str            # file in test/bench/pgbench
    options: str = ""      # PGOPTIONS of its connections
    system: str = "ducto"  # whose balances it debits: ducto, pl or floor


@dataclass(frozen=True)
class Setting:
    label: str
    clients: int
    users: int


@dataclass
class Run:
    tps: float
    processed: int
    latency_ms: float
    wal_per_txn: float     # WAL bytes per pgbench transaction (full-page images after the CHECKPOINT included)
    load1: float           # the 1-minute load average when the run started: was something else running?
    events: int | None = None


def pgbench(db: str, variant: Variant, setting: Setting, seconds: int, log: Path) -> Run:
    psql(db, "CHECKPOINT")  # every run starts from the same state: no checkpoint due in the middle
    wal_start = psql(db, "SELECT pg_current_wal_insert_lsn()")
    load1 = os.getloadavg()[0]
    command = [str(PGBIN / "pgbench"), "-n", "-M", "prepared", "-c", str(setting.clients),
               "-j", str(min(setting.clients, 2)), "-T", str(seconds), "-D", f"nusers={setting.users}",
               "-f", str(HERE / "pgbench" / variant.script), db]
    env = dict(os.environ, PGOPTIONS=variant.options)
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    log.write_text(f"PGOPTIONS={variant.options!r} {' '.join(command)}\n{result.stdout}{result.stderr}")
    tps = re.search(r"^tps = ([\d.]+) \(without initial connection time\)", result.stdout, re.M)
    processed = re.search(r"^number of transactions actually processed: (\d+)", result.stdout, re.M)
    latency = re.search(r"^latency average = ([\d.]+) ms", result.stdout, re.M)
    if result.returncode != 0 or not (tps and processed and latency) or "aborted" in result.stdout + result.stderr:
        sys.exit(f"pgbench failed ({variant.key}, {setting.label}), see {log}")
    wal = float(psql(db, f"SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '{wal_start}')"))
    count = int(processed.group(1))
    return Run(float(tps.group(1)), count, float(latency.group(1)), wal / max(count, 1), load1)


BALANCE_SQL = {
    "ducto": ("SELECT sum(b.balance) FROM generate_series(1, {users}) AS g, "
              "LATERAL ducto.get_balance('user-' || g) AS b"),
    "pl": "SELECT sum(balance) FROM bench.pl_accounts",
    "floor": "SELECT sum(balance) FROM bench.floor_accounts",
}


def balances(db: str, users: int, systems: set[str]) -> dict[str, Decimal]:
    return {s: Decimal(psql(db, BALANCE_SQL[s].format(users=users))) for s in systems}


def accounting_check(db: str, users: int, before: dict[str, Decimal],
                     processed: dict[str, int]) -> list[str]:
    """Each processed transaction must have moved exactly CHARGE_AMOUNT: a charge refused or lost
    would make a variant look faster than it is."""
    after = balances(db, users, set(before))
    lines, failed = [], False
    for system in sorted(before):
        expected = CHARGE_AMOUNT * processed.get(system, 0)
        debited = before[system] - after[system]
        failed |= debited != expected
        lines.append(f"check {system}: debited {debited} for {processed.get(system, 0)} transactions "
                     f"x {CHARGE_AMOUNT}: {'ok' if debited == expected else 'MISMATCH'}")
    if failed:
        sys.exit("accounting check failed:\n" + "\n".join(lines))
    return lines


def ledger_setup(db: str, users: int, out: Path) -> None:
    psql_file(db, HERE / "ledger_setup.sql", {"nusers": str(users)}, out / "setup.log")
    funded = psql(db, f"SELECT count(*) FROM generate_series(1, {users}) AS g, "
                      f"LATERAL ducto.get_balance('user-' || g) AS b WHERE b.available >= 1000000000")
    if funded != str(users):
        sys.exit(f"setup: only {funded} of {users} ducto accounts hold 10^9 credits, see {out / 'setup.log'}")


def events_counter(db: str) -> int:
    return int(psql(db, "SELECT count(*) FROM ducto.events"))


WARM_UP = "warm-up (untimed)"


def measure(db: str, variants: list[Variant], settings: list[Setting], rounds: int, seconds: int,
            out: Path, count_events: bool = False) -> dict[tuple[str, str], list[Run]]:
    runs: dict[tuple[str, str], list[Run]] = {}
    (out / "runs").mkdir(exist_ok=True)
    # Untimed warm-up of every variant: caches, relation sizes, the first checkpoint's page images.
    # Kept under its own setting label: out of the tables, but in the accounting check.
    for variant in variants:
        run = pgbench(db, variant, settings[-1], 3, out / "runs" / f"warmup-{variant.key}.log")
        runs[(WARM_UP, variant.key)] = [run]
    for round_index in range(rounds):
        for setting in settings:
            for variant in rotated(variants, round_index):
                log = out / "runs" / f"r{round_index + 1}-c{setting.clients}-u{setting.users}-{variant.key}.log"
                events_before = events_counter(db) if count_events else 0
                run = pgbench(db, variant, setting, seconds, log)
                if count_events:
                    run.events = events_counter(db) - events_before
                runs.setdefault((setting.label, variant.key), []).append(run)
                print(f"  round {round_index + 1}/{rounds} {setting.label:<24} {variant.key:<12} "
                      f"{run.tps:>9.0f} tps  (load {run.load1:.1f})", flush=True)
    write_samples(out / "samples.tsv", ["setting", "variant", "round", "tps", "processed", "latency_ms",
                                        "wal_bytes_per_txn", "load1", "events"],
                  [[s, v, i + 1, r.tps, r.processed, r.latency_ms, round(r.wal_per_txn), r.load1,
                    "" if r.events is None else r.events]
                   for (s, v), rs in runs.items() for i, r in enumerate(rs)])
    return runs


def processed_by_system(variants: list[Variant], runs: dict[tuple[str, str], list[Run]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for variant in variants:
        total = sum(r.processed for (_, key), rs in runs.items() if key == variant.key for r in rs)
        totals[variant.system] = totals.get(variant.system, 0) + total
    return totals


def tps_table(variants: list[Variant], settings: list[Setting],
              runs: dict[tuple[str, str], list[Run]]) -> tuple[list[str], dict[tuple[str, str], float]]:
    medians = {k: median([r.tps for r in rs]) for k, rs in runs.items()}
    header = f"{'setting':<24}" + "".join(f"{v.key:>20}" for v in variants)
    lines = ["median tps (min-max of the rounds), per variant and setting:", header]
    for setting in settings:
        cells = []
        for v in variants:
            tps = [r.tps for r in runs[(setting.label, v.key)]]
            cells.append(f"{medians[(setting.label, v.key)]:>8.0f} ({spread(tps):>9})")
        lines.append(f"{setting.label:<24}" + "".join(f"{c:>20}" for c in cells))
    lines += ["", "median WAL bytes per transaction (full-page images after each run's CHECKPOINT included):",
              header]
    for setting in settings:
        lines.append(f"{setting.label:<24}" + "".join(
            f"{median([r.wal_per_txn for r in runs[(setting.label, v.key)]]):>20.0f}" for v in variants))
    return lines, medians


def paired_ratio(runs: dict[tuple[str, str], list[Run]], setting: str, numerator: str, denominator: str) -> str:
    """The median over the rounds of the ratio within each round. The runs of one round and setting are
    adjacent in time and share the machine's conditions, so this resists load from other processes
    better than the ratio of the medians."""
    pairs = zip(runs.get((setting, numerator), []), runs.get((setting, denominator), []))
    ratios = [a.tps / b.tps for a, b in pairs if b.tps]
    return f"{median(ratios):.2f}" if ratios else "n/a"


def load_note(runs: dict[tuple[str, str], list[Run]]) -> str:
    loads = [r.load1 for rs in runs.values() for r in rs]
    return (f"1-minute load average at the start of the runs: {min(loads):.1f} to {max(loads):.1f} "
            f"(the server and pgbench alone make about 2 at 8 clients; more means other work shared the CPUs)")


# The notify mode of the ledger benchmark: worker, the one design.md recommends for production, so
# that no writer takes the cluster-wide NOTIFY lock (the events benchmark measures the modes).
LEDGER_VARIANTS = [
    Variant("a_charge", "(a) ducto.charge", "charge.sql", "-c ducto.notify=worker"),
    Variant("b_two_call", "(b) reserve_credits + deduct_credits", "reserve_deduct.sql", "-c ducto.notify=worker"),
    Variant("c_plpgsql", "(c) PL/pgSQL charge", "plpgsql_charge.sql", system="pl"),
    Variant("d_floor", "(d) floor: UPDATE + INSERT", "floor.sql", system="floor"),
]


def run_ledger(args: argparse.Namespace) -> None:
    out, db, users = args.out, args.db, args.users
    ledger_setup(db, users, out)
    settings = [Setting(f"1 client, {users:,} users", 1, users),
                Setting("8 clients, hot user", 8, 1),
                Setting(f"8 clients, {users:,} users", 8, users)]
    before = balances(db, users, {v.system for v in LEDGER_VARIANTS})
    runs = measure(db, LEDGER_VARIANTS, settings, args.rounds, args.seconds, out)
    checks = accounting_check(db, users, before, processed_by_system(LEDGER_VARIANTS, runs))
    verify = psql(db, "SELECT count(*) FROM ducto.verify()")
    checks.append(f"check ducto.verify(): {verify} problem rows" + ("" if verify == "0" else "  <-- FAILED"))
    table, medians = tps_table(LEDGER_VARIANTS, settings, runs)
    pairs = [("a_charge", "d_floor"), ("a_charge", "b_two_call"), ("a_charge", "c_plpgsql"), ("c_plpgsql", "d_floor")]
    names = "".join(f"{a[0] + '/' + b[0]:<7}" for a, b in pairs)
    lines = ["== ledger: one debit per usage event (issue 3) ==", *machine(db),
             f"pgbench -M prepared -T {args.seconds} per run, -j min(clients, 2); {args.rounds} rounds, variants "
             "alternating (rotated per round), CHECKPOINT before each run, one untimed 3 s warm-up per variant",
             "every operation moves 0.1 credits; ducto variants run with ducto.notify = worker",
             *[f"  {v.key}: {v.label} (test/bench/pgbench/{v.script})" for v in LEDGER_VARIANTS],
             load_note(runs), *checks, "", *table, "",
             "ratios of tps (targets at 8 clients over 10,000 users: a/d >= 0.70, a/b >= 1.50): of the medians,",
             "and paired (the median over the rounds of the ratio within a round: runs adjacent in time)",
             f"{'setting':<24}{'medians:':<9}{names}  {'paired:':<8}{names}"]
    for s in settings:
        of_medians = "".join(f"{ratio(medians[(s.label, a)], medians[(s.label, b)]):<7}" for a, b in pairs)
        paired = "".join(f"{paired_ratio(runs, s.label, a, b):<7}" for a, b in pairs)
        lines.append(f"{s.label:<24}{'':<9}{of_medians}  {'':<8}{paired}")
    report(out, lines)


def setting_exists(db: str, name: str) -> bool:
    return psql(db, f"SELECT count(*) FROM pg_settings WHERE name = '{name}'") == "1"


def wait_for_worker(db: str, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if psql(db, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ducto worker' "
                    "AND datname = current_database()") != "0":
            return True
        time.sleep(1)
    return False


def run_events(args: argparse.Namespace) -> None:
    out, db, users = args.out, args.db, args.users
    ledger_setup(db, users, out)
    notes = []
    variants = [Variant("off", "events written, ducto.notify = off", "charge.sql", "-c ducto.notify=off"),
                Variant("transaction", "events written, ducto.notify = transaction", "charge.sql",
                        "-c ducto.notify=transaction")]
    if wait_for_worker(db):
        variants.append(Variant("worker", "events written, ducto.notify = worker (relay by the background worker)",
                                "charge.sql", "-c ducto.notify=worker"))
    else:
        notes.append("note: no ducto worker is connected to this database: the worker variant is skipped")
    if setting_exists(db, "ducto.write_events"):
        variants.append(Variant("no_events", "no events (ducto.write_events = off)", "charge.sql",
                                "-c ducto.write_events=off -c ducto.notify=off"))
    else:
        notes.append("note: the GUC ducto.write_events does not exist in this build: "
                     "the no-events variant is skipped")
    setting = Setting(f"8 clients, {users:,} users", 8, users)
    before = balances(db, users, {"ducto"})
    runs = measure(db, variants, [setting], args.rounds, args.seconds, out, count_events=True)
    checks = accounting_check(db, users, before, processed_by_system(variants, runs))
    medians = {v.key: median([r.tps for r in runs[(setting.label, v.key)]]) for v in variants}
    lines = ["== events: ducto.charge with the outbox and each wake-up mode (issue 4) ==", *machine(db),
             f"pgbench -M prepared -c 8 -j 2 -T {args.seconds} per run over {users:,} users; {args.rounds} rounds, "
             "variants alternating (rotated per round), CHECKPOINT before each run",
             load_note(runs), *checks, *notes, "",
             f"{'variant':<14}{'median tps':>12}{'min-max':>16}{'events/charge':>15}{'WAL B/charge':>14}  what"]
    for v in variants:
        rs = runs[(setting.label, v.key)]
        per_charge = sum(r.events or 0 for r in rs) / max(1, sum(r.processed for r in rs))
        lines.append(f"{v.key:<14}{medians[v.key]:>12.0f}{spread([r.tps for r in rs]):>16}{per_charge:>15.2f}"
                     f"{median([r.wal_per_txn for r in rs]):>14.0f}  {v.label}")
    for v in variants:
        written = sum(r.events or 0 for r in runs[(setting.label, v.key)])
        if (v.key == "no_events") != (written == 0):
            lines.append(f"WARNING: {v.key} wrote {written} events: this build does not do what the variant "
                         "assumes, so its ratios mean nothing")
    lines += ["", "ratios of the medians (targets: worker/off >= 0.85, off/no_events >= 0.90):"]
    if "worker" in medians:
        lines.append(f"  worker / off      = {ratio(medians['worker'], medians['off'])}")
    lines.append(f"  transaction / off = {ratio(medians['transaction'], medians['off'])}")
    if "no_events" in medians:
        lines.append(f"  off / no_events   = {ratio(medians['off'], medians['no_events'])}")
    lines.append("  paired (median over the rounds of the ratio within a round): " + ", ".join(
        f"{a} / {b} = {paired_ratio(runs, setting.label, a, b)}"
        for a, b in (("worker", "off"), ("transaction", "off"), ("off", "no_events"))
        if a in medians and b in medians))
    report(out, lines)


# ---- expr (issue 2 (a)) ----------------------------------------------------------------------------------

def run_expr(args: argparse.Namespace) -> None:
    data = json.loads(Path(args.json).read_text())
    context = data.get("context", {})
    cache = HERE.parent.parent / "build" / "cmake" / "CMakeCache.txt"
    build_type = next((line.split("=", 1)[1] for line in cache.read_text().splitlines()
                       if line.startswith("CMAKE_BUILD_TYPE:")), "?") if cache.exists() else "?"
    lines = ["== expr: compiled evaluation of pricing formulas, Google Benchmark (issue 2 (a)) ==", *host(),
             f"clock: {context.get('mhz_per_cpu', '?')} MHz; ducto core built {build_type} (Debian's libbenchmark "
             f"reports itself as a {context.get('library_build_type', '?')} build: that is the harness, not ducto)",
             f"repetitions: {args.repetitions}; one thread (one core); median of the repetitions", "",
             f"{'benchmark':<22}{'median ns/op':>14}{'CV':>8}{'millions/s':>12}"]
    rows = {}
    for bench in data["benchmarks"]:
        if bench.get("run_type") == "aggregate":
            rows.setdefault(bench["run_name"], {})[bench["aggregate_name"]] = bench
    for name, aggregates in rows.items():
        med = aggregates["median"]
        cv = aggregates.get("cv", {}).get("real_time")
        per_second = med.get("items_per_second", 1e9 / med["real_time"])
        lines.append(f"{name:<22}{med['real_time']:>14.1f}{(f'{100 * cv:.1f}%' if cv is not None else '-'):>8}"
                     f"{per_second / 1e6:>12.2f}")
    lines += ["", "target: BM_EvaluateLinear >= 10 million evaluations/s on one core"]
    report(args.out, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=["price", "ledger", "events", "expr"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--db", default=os.environ.get("PGDATABASE", "bench"))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--json", help="bench_expr --benchmark_out file (expr)")
    parser.add_argument("--repetitions", type=int, default=5, help="what bench_expr ran with (expr)")
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 7 if args.benchmark == "price" else 3
    args.out.mkdir(parents=True, exist_ok=True)
    {"price": run_price, "ledger": run_ledger, "events": run_events, "expr": run_expr}[args.benchmark](args)


if __name__ == "__main__":
    main()
