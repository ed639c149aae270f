"""bench/RESULTS.md from a run's results (the same data as bench/out/<stamp>/results.json)."""

from __future__ import annotations

from typing import Any

DB_NAMES = {"postgres": "PostgreSQL", "sqlite": "SQLite"}

# Issue 7's bar, for PostgreSQL with one worker: minimum ratio to the ceiling of the same run.
TARGET_RATIOS = {"token": 0.20, "get_user": 0.20, "sdk_me": 0.25, "create_user": 0.10}
TARGET_P99_MS = 50.0
TARGET_PEAK_RSS_MIB = 150.0
TARGET_SOAK_GROWTH_PERCENT = 10.0


def _mib(kib: int | None) -> str:
    return "?" if kib is None else f"{kib / 1024:.0f}"


def _peaks(memory: list[dict[str, int]], field: str = "VmHWM") -> str:
    return " / ".join(_mib(m.get(field)) for m in memory) or "?"


def _ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _cpu(cpu: dict[str, float]) -> str:
    return " / ".join(
        "-" if cpu.get(name) is None else f"{cpu[name]:.2f}"
        for name in ("server", "postgres", "wrk")
    )


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _others(ep: dict[str, Any]) -> str:
    others = ep.get("machine_cpu", {}).get("others_percent")
    return "?" if others is None else f"{others:.0f}%"


def _pair_count(block: dict[str, Any]) -> int:
    return max(
        (ep["over_pairs"]["pairs"] for ep in block["endpoints"] if ep.get("over_pairs")),
        default=1,
    )


def _counts(ep: dict[str, Any]) -> tuple[int, int, int]:
    """Requests, errors and non-2xx: with pairs, summed over all of them, so that a failure in
    a pair the row's other figures do not come from still shows."""
    counted = ep.get("over_pairs") or ep["measured"]
    return counted["requests"], counted["errors"], counted["non2xx"]


def _worst_p99(ep: dict[str, Any]) -> float:
    over = ep.get("over_pairs")
    return float(over["p99_worst_ms"] if over else ep["measured"]["latency_ms"]["p99"])


def _pair_ratios(ep: dict[str, Any]) -> str:
    over = ep.get("over_pairs")
    if not over:
        return ""
    ratios = ", ".join(_ratio(r) or "?" for r in over["ratios"])
    return f"{ratios} ({_ratio(over['ratio_min'])}-{_ratio(over['ratio_max'])})"


def _measured_runs(ep: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each measured run of a row, named: the one, or every pair's."""
    if ep.get("pairs"):
        return [
            (f"{ep['label']}, pair {number}", pair["measured"])
            for number, pair in enumerate(ep["pairs"], 1)
        ]
    return [(ep["label"], ep["measured"])] if ep.get("measured") else []


def _endpoint_rows(block: dict[str, Any]) -> list[str]:
    pairs = _pair_count(block)
    columns = ["endpoint", "requests/s", "ceiling beside it (requests/s)", "ratio to ceiling"]
    if pairs > 1:
        columns.append(f"ratios of the {pairs} pairs, in order (min-max)")
    columns += [
        "ratio to the table's first ceiling",
        "p50 ms",
        "p99 ms",
        "requests",
        "errors",
        "non-2xx",
        "peak RSS per worker (MiB)",
        "RSS after the run (MiB)",
        "CPU ms/request: server / PostgreSQL / wrk",
        "other load",
    ]
    rows = [f"| {' | '.join(columns)} |", "|---|" + "--:|" * (len(columns) - 1)]
    for ep in block["endpoints"]:
        if ep.get("skipped"):
            rows.append(f"| {ep['label']} | skipped: {ep['skipped']} |{' |' * (len(columns) - 2)}")
            continue
        m = ep["measured"]
        beside = ep.get("ceiling_beside")
        requests, errors, non2xx = _counts(ep)
        cells = [
            ep["label"],
            f"{m['rps']:,.0f}",
            "" if beside is None else f"{beside['rps']:,.0f}",
            _ratio(ep.get("ratio")),
        ]
        if pairs > 1:
            cells.append(_pair_ratios(ep))
        cells += [
            _ratio(ep.get("ratio_to_first_ceiling")),
            _ms(m["latency_ms"]["p50"]),
            _ms(m["latency_ms"]["p99"]),
            f"{requests:,}",
            str(errors),
            str(non2xx),
            _peaks(ep["memory"]),
            _peaks(ep["memory"], "VmRSS"),
            _cpu(ep.get("cpu_ms_per_request", {})),
            _others(ep),
        ]
        rows.append(f"| {' | '.join(cells)} |")
    return rows


def _block_notes(block: dict[str, Any]) -> list[str]:
    notes = []
    for ep in block["endpoints"]:
        for name, m in _measured_runs(ep):
            if m["non2xx"]:
                notes.append(f"{name}: non-2xx by status per wrk thread {m['non2xx_by_thread']}")
            if m["errors"]:
                notes.append(f"{name}: socket errors {m['errors_detail']}")
        if ep.get("log_problems"):
            shown = "; ".join(f"`{line.strip()[:160]}`" for line in ep["log_problems"][:3])
            more = len(ep["log_problems"]) - 3
            notes.append(
                f"{ep['label']}: the server logged {len(ep['log_problems'])} warning/error "
                f"line(s): {shown}{f' (+{more} more)' if more > 0 else ''}"
            )
    if block.get("setup_memory"):
        peak = _peaks(block["setup_memory"])
        if block.get("peaks_reset"):
            notes.append(
                f"Peak RSS per worker before the measured runs: {peak} MiB (startup, seeding, "
                "and one admin login, whose Argon2id check allocates 64 MiB while it runs). "
                "The peaks were then reset: the table's cover the measured runs."
            )
        else:
            notes.append(
                f"Peak RSS per worker before the measured runs: {peak} MiB. It could not be "
                "reset (no /proc/PID/clear_refs): the table's peaks include it."
            )
    if block.get("supervisor_memory"):
        peak = _mib(block["supervisor_memory"].get("VmHWM"))
        notes.append(f"uvicorn's supervisor process (serves no requests): peak RSS {peak} MiB")
    return notes


def _targets(block: dict[str, Any]) -> list[str]:
    rows = ["| check | target | measured | met |", "|---|---|---|---|"]
    eps = {ep["name"]: ep for ep in block["endpoints"] if ep.get("measured")}
    for name, target in TARGET_RATIOS.items():
        ep = eps.get(name)
        if ep is None or ep.get("ratio") is None:
            continue
        over = ep.get("over_pairs")
        median, worst, summed = (
            (
                f" (median of {over['pairs']} pairs)",
                f" (worst of {over['pairs']} pairs)",
                f" (all {over['pairs']} pairs)",
            )
            if over
            else ("", "", "")
        )
        ok = ep["ratio"] >= target
        rows.append(
            f"| {ep['label']}: ratio to the ceiling beside it{median} | >= {target:.2f} | "
            f"{ep['ratio']:.3f} | "
            f"{'yes' if ok else 'no'} |"
        )
        p99 = _worst_p99(ep)
        rows.append(
            f"| {ep['label']}: p99{worst} | < {TARGET_P99_MS:.0f} ms | {_ms(p99)} ms | "
            f"{'yes' if p99 < TARGET_P99_MS else 'no'} |"
        )
        _, errors, non2xx = _counts(ep)
        bad = errors + non2xx
        rows.append(
            f"| {ep['label']}: errors + non-2xx{summed} | 0 | {bad} | "
            f"{'yes' if bad == 0 else 'no'} |"
        )
    peak = max(
        (w.get("VmHWM", 0) for ep in eps.values() if ep["name"] != "ceiling" for w in ep["memory"]),
        default=None,
    )
    if peak is not None:
        ok = peak / 1024 < TARGET_PEAK_RSS_MIB
        rows.append(
            f"| peak RSS per worker | < {TARGET_PEAK_RSS_MIB:.0f} MiB | {_mib(peak)} MiB | "
            f"{'yes' if ok else 'no'} |"
        )
    soak = block.get("soak")
    if soak and soak.get("growth_percent"):
        growth = max(soak["growth_percent"])
        ok = growth < TARGET_SOAK_GROWTH_PERCENT
        rows.append(
            f"| RSS growth, first to last checkpoint of the soak | < "
            f"{TARGET_SOAK_GROWTH_PERCENT:.0f}% | {growth:.1f}% | {'yes' if ok else 'no'} |"
        )
    return rows if len(rows) > 2 else []


def _soak(block: dict[str, Any]) -> list[str]:
    soak = block["soak"]
    lines = [
        f"Memory soak: {soak['requests_planned']:,} requests to GET /users/{{id}}/token in "
        f"runs of {soak['checkpoint']:,}; RSS (MiB) per worker after each run.",
        "",
        "| after requests | requests/s | non-2xx | errors | RSS per worker | peak RSS per worker |",
        "|--:|--:|--:|--:|--:|--:|",
    ]
    for cp in soak["checkpoints"]:
        rss = " / ".join(_mib(m.get("VmRSS")) for m in cp["memory"])
        lines.append(
            f"| {cp['after_requests']:,} | {cp['rps']:,.0f} | {cp['non2xx']} | {cp['errors']} "
            f"| {rss} | {_peaks(cp['memory'])} |"
        )
    if soak.get("growth_percent"):
        growth = ", ".join(f"{g:+.1f}%" for g in soak["growth_percent"])
        lines += ["", f"RSS growth from the first checkpoint to the last, per worker: {growth}."]
    return lines


def _profile(block: dict[str, Any]) -> list[str]:
    prof = block["profile"]
    if prof.get("error"):
        return [f"Profile of {prof['endpoint']}: failed: {prof['error']}"]
    summary = prof["summary"]
    lines = [
        f"py-spy profile of worker {prof['pid']} during an extra run of {prof['label']}, after "
        "the measured one "
        f"({summary['samples']:,} samples at 200 Hz of threads holding the GIL; raw stacks "
        f"in `{prof['raw']}`, for `flamegraph.pl` or speedscope).",
        "",
        "Self time by package: "
        + ", ".join(f"{p['function']} {p['percent']}%" for p in summary["packages"])
        + ".",
        "",
        "| function (inclusive) | % | function (self) | % |",
        "|---|--:|---|--:|",
    ]
    inc, own = summary["inclusive"], summary["self"]
    for i in range(min(20, max(len(inc), len(own)))):
        a = inc[i] if i < len(inc) else None
        b = own[i] if i < len(own) else None
        lines.append(
            f"| {a['function'] if a else ''} | {a['percent'] if a else ''} "
            f"| {b['function'] if b else ''} | {b['percent'] if b else ''} |"
        )
    return lines


def _pairs_method(cfg: dict[str, Any]) -> list[str]:
    """The header line that says how a row comes from its pairs (none for one pair)."""
    pairs = cfg.get("pairs", 1)
    if pairs <= 1:
        return []
    even = (
        " (with an even number of pairs, the lower of the two middle ratios, so that it is "
        "one pair's own)"
        if pairs % 2 == 0
        else ""
    )
    return [
        f"- Pairs (`--pairs {pairs}`): after each Tether endpoint's warm-up, {pairs} "
        "alternating pairs of runs, each the ceiling beside it (its warm-up, then a measured "
        "run) and then the endpoint's measured run. Each pair gives a ratio: the endpoint's "
        "requests/s over that pair's ceiling. A row's ratio to ceiling is the median of its "
        f"{pairs} pairs' ratios{even}, and its requests/s, ceiling beside it, ratio to the "
        "table's first ceiling, latency, CPU ms/request and other load are that median "
        "pair's. Its requests, errors and non-2xx are summed over all the pairs, and peak RSS "
        "and RSS are read after the last pair. Against issue 7's targets, the ratio is the "
        "median, p99 is the worst of the pairs', and errors + non-2xx are summed over them. "
        f"The column ratios of the {pairs} pairs lists every pair's ratio in the order they "
        "were measured, then the lowest and highest; results.json has every pair's figures.",
    ]


def render(results: dict[str, Any]) -> str:
    cfg, machine = results["config"], results["machine"]
    lines = ["# Tether benchmark results", ""]
    if not results["full"]:
        lines += [
            "> **Reduced run** (not the full matrix, or shorter than the default duration): a "
            "smoke test of the harness, not figures to quote.",
            "",
        ]
    lines += [
        f"- Date: {results['started_at']} (took {results['elapsed_min']:.1f} min)",
        f"- Command: `{results['command']}`",
        f"- Commit: {machine['git']}; measured: {results.get('source', 'the working tree')}",
        f"- Load average (1, 5, 15 min) at the start: {machine['loadavg']}; at the end: "
        f"{results.get('loadavg_end', '?')} (anything else running skews the figures)",
        f"- Machine: {machine['nproc']} CPUs available (nproc), {machine['cpu_model']}, "
        f"{machine['mem_total']}, Linux {machine['kernel']}",
        f"- Software: Python {machine['python']}, PostgreSQL {machine['postgres']}, SQLite "
        f"{machine['sqlite']}, {machine['wrk']}; {machine['packages']}",
        f"- Load: wrk, {cfg['connections']} connections, {cfg['threads']} threads, "
        f"{cfg['warmup']:g} s warm-up then {cfg['duration']:g} s measured per endpoint, "
        f"timeout {cfg['timeout']} s. wrk, the server's workers and PostgreSQL all share the "
        f"machine's {machine['nproc']} cores, so absolute figures are below what a separate "
        "load generator would see: compare ratios to the ceiling.",
        "- Servers: `python -m tether serve --port N --workers W` (uvloop, httptools, no access "
        f"log), TETHER_DB_POOL_SIZE={cfg['pool_size']} per worker. Ceiling: `uvicorn "
        "ceiling:app --loop uvloop --http httptools --no-access-log --no-proxy-headers "
        "--workers W` "
        "(bench/ceiling.py: one GET route, typed response model). Its server runs through "
        "each table: measured once first (the table's ceiling row), then again just before "
        f"each Tether endpoint's measured run ({cfg.get('ceiling_warmup', 0):g} s warm-up, "
        "same duration), after that endpoint's warm-up. An endpoint's ratio to the ceiling is "
        "to that measurement beside it, taken seconds apart, so drift in what the machine "
        "gives (seen here: up to 20% between runs minutes apart) largely cancels; the ratio "
        "to the table's first ceiling is shown too.",
        *_pairs_method(cfg),
        f"- Data: a fresh database per table (a scratch PostgreSQL database, or a new SQLite "
        f"file), an account from `tether init --json`, {cfg['users']:,} users created through "
        "POST /users; GET routes rotate over those users; POST /users sends a new username "
        "every request; /sdk/me uses a user token from GET /users/{id}/token; linked-sources "
        "with a tenant token sends one RS256 token per user, signed as a customer's backend "
        "would with a signing key made through the admin API.",
        "- Columns: requests/s and latency from wrk's measured run; errors are socket errors "
        "(connect, read, write, timeout); non-2xx counts every answer outside 200-299 (the "
        "Lua script's count); peak RSS is each worker's VmHWM after the endpoint's run, reset "
        "once before the table's first Tether endpoint, so it covers that endpoint's runs and "
        "the earlier ones (the set-up's peak is in the table's notes); RSS after the run "
        "is VmRSS at the same moment. With 2 workers, values are per worker, `a / b`. CPU "
        "ms/request is user+system CPU time during the measured run divided by its requests: "
        "all server workers together, the PostgreSQL backends serving the scratch database, "
        "and wrk. It is steadier than requests/s when other work shares the machine. Other "
        "load is the CPU time of every other process on the machine during the measured run, "
        "as a share of all its cores: above a few percent, the row's requests/s and latency "
        "are understated.",
        "",
    ]
    for block in results["blocks"]:
        title = f"{DB_NAMES[block['database']]}, {block['workers']} worker" + (
            "s" if block["workers"] > 1 else ""
        )
        lines += [f"## {title}", ""]
        status = block.get("status", "incomplete")
        if status != "ok":
            lines += [f"Incomplete ({status}): {block.get('note', status)}", ""]
            if not block.get("endpoints"):
                continue
        before = block.get("machine_before")
        if before:
            lines += [
                f"Machine {before['busy_percent']:.0f}% busy just before this table (with none "
                f"of the bench's servers under load; waited {before['waited_s']:.0f} s).",
                "",
            ]
        lines += _endpoint_rows(block)
        notes = _block_notes(block)
        if notes:
            lines += ["", *[f"- {note}" for note in notes]]
        lines.append("")
        if block.get("soak"):
            lines += [*_soak(block), ""]
        if block.get("profile"):
            lines += [*_profile(block), ""]
        if block["database"] == "postgres" and block["workers"] == 1:
            targets = _targets(block)
            if targets:
                lines += ["Against issue 7's targets (PostgreSQL, 1 worker):", "", *targets, ""]
    return "\n".join(lines).rstrip() + "\n"
