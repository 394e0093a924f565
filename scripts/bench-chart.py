#!/usr/bin/env python3
"""Draws docs/performance.svg from a `jobd bench --json` file (Python stdlib only).

Left: drain rate against workers. Right: drain rate against the waiting backlog.
Usage: scripts/bench-chart.py RESULTS.json OUT.svg
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


def main():
    results = json.load(open(sys.argv[1]))
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
