"""The report page: one self-contained HTML file (inline CSS, figures as inline PNG), answers first.

Order: the three headline tables, the three headline figures, the details, the appendix. Rows whose
numbers are not measurements (FreeBSD fixtures, the FreeBSD semantics model) carry that label in
red beside every number, and the page opens with a banner saying so.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
from typing import Iterable

import pandas as pd

from tracer.view import fmt
from tracer.analysis.requires import NOT_MEASURED

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1400px;padding:0 1rem;
color:#1d1d1f;line-height:1.4}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
h3{margin:1.4rem 0 .3rem}p.lead{margin:.2rem 0 .6rem;color:#444}
table{border-collapse:collapse;font-size:.86rem;margin:.4rem 0 1rem}
th,td{padding:.25rem .55rem;border-bottom:1px solid #e3e3e3;vertical-align:top}
th{background:#f4f5f7;text-align:left;font-weight:600;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.num .spread{display:block;font-size:.72rem;color:#777}
td.mode{font-weight:600;white-space:nowrap}td.cfg{color:#333;min-width:14rem}
tr.not-measured td{background:#fff8f8}
.src{color:#b00020;font-weight:700;font-size:.78rem;min-width:10rem}.lossy{color:#b36b00;font-weight:700}
.banner{border:2px solid #b00020;background:#fff3f3;color:#b00020;padding:.6rem .9rem;font-weight:700;margin:1rem 0}
.swatch{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.35rem;vertical-align:-1px}
figure{margin:1rem 0 2rem}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#444}
details{margin:.6rem 0}code,.path{font-family:ui-monospace,monospace;font-size:.8rem}
.muted{color:#777;font-size:.85rem}
"""


def esc(v) -> str:
    return html.escape("" if v is None or fmt.missing(v) else str(v))


def png_img(png: bytes, alt: str, css_class: str, question: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<img class="{css_class}" data-question="{esc(question)}" alt="{esc(alt)}" '
            f'src="data:image/png;base64,{data}">')


def headline_table(frame: pd.DataFrame, metrics: dict[str, str], text: dict[str, str], question: str,
                   colors: dict[str, str], css_class: str = "headline") -> str:
    """A headline table: OS, mode (with its colour), configuration, n, one column per metric (the
    mean, and its interval or range in small type beneath), the text columns, and the source.
    A metric no row has (e.g. the REAP projection in a Linux-only report) is left out."""
    metrics = {m: h for m, h in metrics.items() if m in frame.columns and (frame[m] != "").any()}
    head = ["OS", "mode", "configuration", "runs", *metrics.values(), *text.values(), "source"]
    out = [f'<table class="{css_class}" data-question="{esc(question)}"><thead><tr>'
           + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for r in frame.to_dict("records"):
        measured = r["source"] not in NOT_MEASURED
        cells = [f"<td>{esc(r['os'])}</td>",
                 f'<td class="mode"><span class="swatch" style="background:{colors.get(r["mode"], "#999")}">'
                 f'</span>{esc(r["mode"])}</td>',
                 f'<td class="cfg">{esc(r["configuration"])}'
                 + (' <span class="lossy" title="the tracer lost events: counts are lower bounds">LOSSY</span>'
                    if r.get("lossy") else "") + "</td>",
                 f'<td class="num">{r["n"]}</td>']
        for m in metrics:
            spread = r.get(m + "__spread") or ""
            cells.append(f'<td class="num">{esc(r.get(m))}'
                         + (f'<span class="spread">{esc(spread)}</span>' if spread else "") + "</td>")
        cells += [f"<td>{esc(r.get(c))}</td>" for c in text]
        cells.append("<td>measured</td>" if measured else f'<td class="src">{esc(r["source"])}</td>')
        out.append(f'<tr class="{"measured" if measured else "not-measured"}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def plain_table(frame: pd.DataFrame, columns: dict[str, str], numeric: Iterable[str] = (), limit: int = 60,
                csv_name: str | None = None) -> str:
    """A detail table of already formatted values: ``columns`` maps frame column -> header. At most
    ``limit`` rows, with a note naming the CSV that holds them all."""
    numeric = set(numeric)
    cols = [c for c in columns if c in frame.columns]
    out = ['<table class="detail"><thead><tr>' + "".join(f"<th>{esc(columns[c])}</th>" for c in cols)
           + "</tr></thead><tbody>"]
    for r in frame.head(limit).to_dict("records"):
        src = r.get("source")
        cls = ' class="not-measured"' if src in NOT_MEASURED else ""
        out.append(f"<tr{cls}>" + "".join(
            f'<td class="{"num" if c in numeric else ""}">{esc(r.get(c))}</td>' for c in cols) + "</tr>")
    out.append("</tbody></table>")
    if len(frame) > limit:
        out.append(f'<p class="muted">First {limit} of {len(frame):,} rows'
                   + (f"; all of them in <code>tables/{esc(csv_name)}.csv</code>" if csv_name else "") + ".</p>")
    return "".join(out)


def page(title: str, note: str, banners: list[str], sections: list[str]) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>"
            f'<p class="muted">Generated {stamp} by aiotrace. {esc(note)}</p>'
            + "".join(f'<div class="banner">{esc(b)}</div>' for b in banners if b)
            + "".join(sections) + "</body></html>")
