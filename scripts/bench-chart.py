#!/usr/bin/env python3
"""Draws docs/performance.svg from a `jobd bench --json` file (Python stdlib only).

Left: drain rate against workers. Right: drain rate against the waiting backlog.
Usage: scripts/bench-chart.py RESULTS.json OUT.svg

Given a `scripts/bench-peers` file instead (docs/bench/peers.json), draws the side-by-side
chart (docs/performance-peers.svg): left, each round's best drain rate of jobd and of each
peer, with the jobd / pgqueuer ratio; right, the CPU per job of every setting, split into
PostgreSQL, client and Redis.
"""
import json
import sys
from xml.sax.saxutils import escape


def panel(x0, y0, w, h, title, ys, xlabels, ylabel, target=None, target_label="target"):
    out = []
    top = max(ys + ([target] if target else []), default=1) * 1.2 or 1
    out.append(f'<text x="{x0 + w / 2}" y="{y0 - 24}" text-anchor="middle" font-weight="bold">{escape(title)}</text>')
    out.append(f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + w}" y2="{y0 + h}" stroke="#333"/>')
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 + h}" stroke="#333"/>')
    for i in range(6):
        v = top * i / 5
        y = y0 + h - h * i / 5
        out.append(f'<line x1="{x0 - 4}" y1="{y}" x2="{x0 + w}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 8}" y="{y + 4}" text-anchor="end" font-size="11">{v:,.0f}</text>')
    out.append(f'<text x="{x0 - 56}" y="{y0 + h / 2}" transform="rotate(-90 {x0 - 56} {y0 + h / 2})" '
               f'text-anchor="middle" font-size="12">{escape(ylabel)}</text>')
    n = max(len(ys), 1)
    for i, y in enumerate(ys):
        px = x0 + w * (i + 0.5) / n
        py = y0 + h - h * y / top
        out.append(f'<rect x="{px - w / n * 0.3}" y="{py}" width="{w / n * 0.6}" height="{y0 + h - py}" fill="#4a7bd0"/>')
        out.append(f'<text x="{px}" y="{py - 5}" text-anchor="middle" font-size="11">{y:,.0f}</text>')
        out.append(f'<text x="{px}" y="{y0 + h + 16}" text-anchor="middle" font-size="11">{escape(xlabels[i])}</text>')
    if target:
        # The line over the bars; its legend under the title, where no bar can hide it.
        y = y0 + h - h * target / top
        out.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + w}" y2="{y}" stroke="#c33" stroke-width="1.5" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{x0 + w / 2}" y="{y0 - 8}" text-anchor="middle" font-size="11" fill="#c33">'
                   f'dashed: {escape(target_label)} ({target:,.0f} jobs/s)</text>')
    return out


JOBD_COLOR, PEER_COLOR = "#4a7bd0", "#e08a2c"
QUEUE_COLORS = {"jobd": JOBD_COLOR, "pgqueuer": PEER_COLOR, "procrastinate": "#5aa05a"}
CPU_COLORS = (("postgresCPUMicrosPerJob", "PostgreSQL", "#2f4f7f"),
              ("clientCPUMicrosPerJob", "jobd / peer processes", "#7fa6e0"),
              ("redisCPUMicrosPerJob", "Redis", "#c9d7ef"))


def axes(x0, y0, w, h, top, ylabel, digits=0):
    out = [f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + w}" y2="{y0 + h}" stroke="#333"/>',
           f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 + h}" stroke="#333"/>']
    for i in range(6):
        v, y = top * i / 5, y0 + h - h * i / 5
        out.append(f'<line x1="{x0 - 4}" y1="{y}" x2="{x0 + w}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 8}" y="{y + 4}" text-anchor="end" font-size="11">{v:,.{digits}f}</text>')
    out.append(f'<text x="{x0 - 56}" y="{y0 + h / 2}" transform="rotate(-90 {x0 - 56} {y0 + h / 2})" '
               f'text-anchor="middle" font-size="12">{escape(ylabel)}</text>')
    return out


def peers_chart(results):
    width, height = 920, 430
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    # Left: best of each queue per round.
    x0, y0, w, h = 100, 70, 330, 250
    rounds = results["roundSummary"]
    rates = [b["jobsPerSecond"] for r in rounds for b in r["best"].values()]
    top = max(rates, default=1) * 1.25 or 1
    median = results.get("medianRatio")
    title = "Best drain rate per round" + (f" (jobd / pgqueuer, median {median:.2f}×)" if median else "")
    svg.append(f'<text x="{x0 + w / 2}" y="{y0 - 40}" text-anchor="middle" font-weight="bold">{escape(title)}</text>')
    queues = [q for q in QUEUE_COLORS if results["settings"].get(q)]
    legend = "  ".join(f'<tspan fill="{QUEUE_COLORS[q]}">■ {escape(q)}'
                       + (f' {escape(results["machine"][q])}' if q != "jobd" and q in results["machine"] else "")
                       + '</tspan>' for q in queues)
    svg.append(f'<text x="{x0 + w / 2}" y="{y0 - 24}" text-anchor="middle" font-size="11">'
               f'{legend}  ({results["jobs"]:,} no-op jobs each)</text>')
    svg += axes(x0, y0, w, h, top, "jobs/s (first handler start → last finish)")
    n = max(len(rounds), 1)
    for i, r in enumerate(rounds):
        group = x0 + w * i / n
        bar = w / n * 0.64 / max(len(queues), 1)
        for j, queue in enumerate(queues):
            color = QUEUE_COLORS[queue]
            best = r["best"].get(queue)
            if not best:
                continue
            px = group + w / n * 0.18 + j * bar
            py = y0 + h - h * best["jobsPerSecond"] / top
            svg.append(f'<rect x="{px}" y="{py}" width="{bar * 0.94}" height="{y0 + h - py}" fill="{color}">'
                       f'<title>{escape(best["label"])}</title></rect>')
            svg.append(f'<text x="{px + bar / 2}" y="{py - 4}" text-anchor="middle" font-size="10">{best["jobsPerSecond"]:,.0f}</text>')
        svg.append(f'<text x="{group + w / n / 2}" y="{y0 + h + 16}" text-anchor="middle" font-size="11">round {r["round"]}</text>')
        if r.get("ratio"):
            ratio = f'{r["ratio"]:.2f}×'
            if r.get("postgresWindowRatio"):
                ratio += f' · PG {r["postgresWindowRatio"]:.2f}×'
            svg.append(f'<text x="{group + w / n / 2}" y="{y0 + h + 30}" text-anchor="middle" font-size="10">{escape(ratio)}</text>')
    svg.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 46}" text-anchor="middle" font-size="10" fill="#555">'
               'ratio jobd / pgqueuer best; PG: both windows from PostgreSQL, first dequeue → last completion</text>')
    # Right: CPU per job of every setting (medians over the rounds), stacked.
    x0 = 570
    costs = results.get("costs", [])
    totals = [sum(c[k] or 0 for k, _, _ in CPU_COLORS) for c in costs]
    top = max(totals, default=1) * 1.2 or 1
    svg.append(f'<text x="{x0 + w / 2}" y="{y0 - 40}" text-anchor="middle" font-weight="bold">CPU per job (median over rounds)</text>')
    svg.append(f'<text x="{x0 + w / 2}" y="{y0 - 24}" text-anchor="middle" font-size="11">' + "  ".join(
        f'<tspan fill="{color}">■</tspan> {escape(name)}' for _, name, color in CPU_COLORS) + '</text>')
    svg += axes(x0, y0, w, h, top, "µs of CPU per job")
    n = max(len(costs), 1)
    for i, (c, total) in enumerate(zip(costs, totals)):
        px, bar, base = x0 + w * (i + 0.2) / n, w / n * 0.6, y0 + h
        for key, name, color in CPU_COLORS:
            value = c.get(key) or 0
            height_px = h * value / top
            base -= height_px
            svg.append(f'<rect x="{px}" y="{base}" width="{bar}" height="{height_px}" fill="{color}">'
                       f'<title>{escape(name)}: {value:.1f} µs</title></rect>')
        svg.append(f'<text x="{px + bar / 2}" y="{base - 4}" text-anchor="middle" font-size="10">{total:.0f}</text>')
        short = c["label"].replace(" workers", " w").replace("batch ", "").replace(" procs", "")
        short = short.replace("concurrency ", "c")
        svg.append(f'<text x="{px + bar / 2}" y="{y0 + h + 16}" text-anchor="middle" font-size="10" '
                   f'fill="{QUEUE_COLORS.get(c["queue"], "#333")}">{escape(short)}</text>')
    m = results["machine"]
    load = f', load average {m.get("loadAverageBefore") or 0:.1f} → {m.get("loadAverageAfter") or 0:.1f} (shared host)'
    svg.append(f'<text x="{width / 2}" y="{height - 36}" text-anchor="middle" font-size="11" fill="#555">'
               f'{m["cores"]} cores, {escape(m["postgres"])}, Redis {escape(m["redis"])}, jobd {escape(m["jobd"])}, '
               f'Python {escape(m["python"])}{escape(load)}</text>')
    svg.append(f'<text x="{width / 2}" y="{height - 18}" text-anchor="middle" font-size="11" fill="#555">'
               f'{escape(results["command"])}</text>')
    svg.append('</svg>')
    return svg


def main():
    results = json.load(open(sys.argv[1]))
    if results.get("kind") == "bench-peers":
        with open(sys.argv[2], "w") as out:
            out.write("\n".join(peers_chart(results)) + "\n")
        return
    drain = results.get("drain", [])
    scale = results.get("scale", [])
    width, height = 920, 400
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    svg += panel(100, 60, 320, 250, "Drain rate by workers (no-op jobs)",
                 [d["jobsPerSecond"] for d in drain],
                 [f'{d["workers"]} worker' + ("" if d["workers"] == 1 else "s") for d in drain],
                 "jobs/s (INSERT → completed)", target=30000, target_label="target")
    floor = scale[0]["jobsPerSecond"] * 0.9 if scale else None
    workers = max((d["workers"] for d in drain), default=64)
    svg += panel(570, 60, 320, 250, f"Drain rate by waiting backlog ({workers} workers)",
                 [s["jobsPerSecond"] for s in scale],
                 [f'{s["backlog"]:,} waiting' for s in scale],
                 f'jobs/s, completions {scale[0]["drained"] // 10:,} → {scale[0]["drained"]:,}' if scale else "jobs/s",
                 target=floor, target_label="target: 90% of the smallest backlog's rate")
    m = results["machine"]
    load = ""
    if m.get("loadAverageBefore") is not None:
        load = f', load average {m["loadAverageBefore"]:.1f} → {m.get("loadAverageAfter") or 0:.1f} (shared host)'
    svg.append(f'<text x="{width / 2}" y="{height - 36}" text-anchor="middle" font-size="11" fill="#555">'
               f'{m["cores"]} cores, {m["memoryGiB"]} GiB, {escape(m["postgres"])}, Redis {escape(m["redis"])}{escape(load)}</text>')
    svg.append(f'<text x="{width / 2}" y="{height - 18}" text-anchor="middle" font-size="11" fill="#555">'
               f'{escape(results["command"])}</text>')
    svg.append('</svg>')
    with open(sys.argv[2], "w") as out:
        out.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
