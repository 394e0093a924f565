#!/usr/bin/env python3
"""Draws docs/performance.svg from a `jobd bench --json` file (Python stdlib only).

Left: drain rate against workers. Right: drain rate against the waiting backlog
(log scale). Usage: scripts/bench-chart.py RESULTS.json OUT.svg
"""
import json
import sys
from xml.sax.saxutils import escape


def panel(x0, y0, w, h, title, xs, ys, xlabels, ylabel, target=None, target_label="target"):
    out = []
    top = max(ys + ([target] if target else [])) * 1.15 or 1
    out.append(f'<text x="{x0 + w / 2}" y="{y0 - 12}" text-anchor="middle" font-weight="bold">{title}</text>')
    out.append(f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + w}" y2="{y0 + h}" stroke="#333"/>')
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 + h}" stroke="#333"/>')
    for i in range(6):
        v = top * i / 5
        y = y0 + h - h * i / 5
        out.append(f'<line x1="{x0 - 4}" y1="{y}" x2="{x0 + w}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 8}" y="{y + 4}" text-anchor="end" font-size="11">{v:,.0f}</text>')
    out.append(f'<text x="{x0 - 52}" y="{y0 + h / 2}" transform="rotate(-90 {x0 - 52} {y0 + h / 2})" '
               f'text-anchor="middle" font-size="12">{ylabel}</text>')
    if target:
        y = y0 + h - h * target / top
        out.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + w}" y2="{y}" stroke="#c33" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{x0 + w - 4}" y="{y - 5}" text-anchor="end" font-size="11" fill="#c33">target {target:,}</text>')
    n = len(xs)
    points = []
    for i, (x, y) in enumerate(zip(xs, ys)):
        px = x0 + w * (i + 0.5) / n
        py = y0 + h - h * y / top
        points.append((px, py))
        out.append(f'<rect x="{px - w / n * 0.3}" y="{py}" width="{w / n * 0.6}" height="{y0 + h - py}" fill="#4a7bd0"/>')
        out.append(f'<text x="{px}" y="{py - 5}" text-anchor="middle" font-size="11">{y:,.0f}</text>')
        out.append(f'<text x="{px}" y="{y0 + h + 16}" text-anchor="middle" font-size="11">{xlabels[i]}</text>')
    return out


def main():
    results = json.load(open(sys.argv[1]))
    drain = results["drain"]
    scale = results["scale"]
    width, height = 900, 380
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    svg += panel(90, 50, 320, 250, "Drain rate by workers (no-op jobs)",
                 [d["workers"] for d in drain], [d["jobsPerSecond"] for d in drain],
                 [f'{d["workers"]} workers' for d in drain], "jobs/s (INSERT → completed)", target=30000)
    floor = round(scale[0]["jobsPerSecond"] * 0.9) if scale else None
    svg += panel(540, 50, 320, 250, "Drain rate by waiting backlog (64 workers)",
                 [s["backlog"] for s in scale], [s["jobsPerSecond"] for s in scale],
                 [f'{s["backlog"]:,}' for s in scale], "jobs/s, first 20k drained",
                 target=floor, target_label="90% of the smallest")
    m = results["machine"]
    load = ""
    if m.get("loadAverageBefore") is not None:
        load = f', load average {m["loadAverageBefore"]:.1f}→{m.get("loadAverageAfter") or 0:.1f} (shared host)'
    svg.append(f'<text x="{width / 2}" y="{height - 30}" text-anchor="middle" font-size="11" fill="#555">'
               f'{m["cores"]} cores, {m["memoryGiB"]} GiB, {m["postgres"]}, Redis {m["redis"]}{load}</text>')
    svg.append(f'<text x="{width / 2}" y="{height - 14}" text-anchor="middle" font-size="11" fill="#555">'
               f'{escape(results["command"])}</text>')
    svg.append('</svg>')
    open(sys.argv[2], "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
