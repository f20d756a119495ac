"""The page: sections in reading order, each a title, a short explanation of what it
shows and what to look at, and its charts and tables; plotly.js inlined once in the head."""

from __future__ import annotations

from dataclasses import dataclass, field

from executor.report import baselines, lengths, memory, pools, scaling, stages, summary, timeline
from executor.report.figures import FONT, Chart
from executor.report.text import escape


@dataclass
class Section:
    anchor: str
    title: str
    explanation: str  # HTML: one or two short paragraphs
    parts: list = field(default_factory=list)  # Chart objects or HTML strings, in order


def sections(simulation: dict, plan: dict, sweep: dict | None) -> list[Section]:
    long_tail = simulation["long_tail"]
    mean = simulation["iteration_time_s"]
    found = simulation.get("baselines", plan.get("baselines")) or []
    out = [
        Section("timeline", "Timeline",
                "<p>Each row is a pool of GPUs (and the driver's CPU); each bar is one stage call, coloured by "
                "stage. Gaps in a row are time that pool sits idle. Bars outlined in black are the last "
                "iteration's critical path: shortening anything else does not shorten the iteration.</p>"
                "<p>With more than two iterations the chart opens on the last two (the steady state); drag the "
                "range slider under it to move along the run, and hover a bar for its times and arguments.</p>",
                [timeline.timeline_chart(simulation), summary.critical_path_html(simulation)]),
        Section("stages", "Stage breakdown",
                "<p>Time per iteration of each stage: the plan's prediction (grey) next to the simulated mean, "
                "with a whisker to the p95. With fixed response lengths the two agree; sampled lengths move "
                "generation, and a long whisker means the stage varies from iteration to iteration.</p>",
                [stages.stages_chart(simulation), stages.stages_table(simulation)]),
        Section("utilisation", "Utilisation",
                "<p>The share of the simulated run each pool spends running a call. A pool that is mostly idle "
                "is waiting on another pool: the plan may give it fewer GPUs, or share it with another role.</p>",
                [pools.utilisation_chart(simulation), pools.pools_table(simulation)]),
        Section("memory", "Memory",
                "<p>Memory per GPU of each pool through the run, against the GPU's capacity (red dashes): "
                "weights and optimizer states stay resident, activations and the KV cache come and go with "
                "their stages. The bars below show what the peak is made of.</p>"
                f"<p>{escape(memory.memory_headroom(simulation))}</p>",
                [memory.memory_timeline_chart(simulation), memory.memory_peak_chart(simulation)]),
        Section("long-tail", "Response lengths and the long tail",
                "<p>The response lengths sampled in the simulation. In continuous batching the longest "
                "responses decide when generation ends: near its end the engines decode a few long samples "
                "while the rest of the batch has finished.</p>"
                f"<p><b>{escape(lengths.long_tail_summary(long_tail))}</b> "
                f"{escape(lengths.what_if_summary(long_tail, mean, simulation['response_lengths']))}</p>",
                [lengths.histogram_chart(simulation["response_lengths"])]),
        Section("what-if", "What-if: a response length cap",
                f"<p>{_what_if_scope(long_tail)}, every response cut at each cap (a what-if, not a change to "
                "the plan): generation and iteration time, the speedup, and the share of samples a cap would "
                "truncate. A cap that truncates many samples changes what the model learns.</p>",
                [lengths.what_if_chart(long_tail, mean) if long_tail["what_if_caps"] else "",
                 lengths.what_if_table(long_tail, mean)]),
        Section("baselines", "The plan against the baselines",
                "<p>The iteration time the cost model predicts for this plan and for the layouts of the search's "
                "baselines (the hand-written layouts of verl and OpenRLHF, and HybridFlow's Algorithm 1), all "
                "priced the same way. The dashed line is this dry run's simulated mean.</p>",
                [baselines.baselines_chart(plan, found, mean), baselines.baselines_table(found)]),
    ]
    if sweep is not None:
        out.append(Section(
            "scaling", "Scaling",
            f"<p>The best plan at each GPU count of the sweep (nodes of {escape(str(sweep['cluster_base']))}): "
            "throughput, throughput per GPU, and linear scaling from the smallest count for reference. Where "
            "tokens/s per GPU falls, the extra GPUs buy less; the table names the placement chosen at each size.</p>",
            [scaling.scaling_chart(sweep), scaling.scaling_table(sweep)]))
    out.append(Section("layouts", "Layouts of the plan",
                       "<p>Each role's parallel layout and its memory per GPU, as the plan chose them.</p>",
                       [summary.layouts_table(plan)]))
    return out


def _what_if_scope(long_tail: dict) -> str:
    n = long_tail.get("what_if_iterations")
    if n:
        return f"The first {n} iteration{'s' if n != 1 else ''} simulated again on the same samples"
    return "The plan simulated again on the same samples"


def render(simulation: dict, plan: dict, sweep: dict | None, plotly_js: str) -> str:
    parts = sections(simulation, plan, sweep)
    nav = " ".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in parts)
    body = "\n".join(_section_html(s) for s in parts)
    digest = str(plan.get("inputs", {}).get("digest", ""))[:12]
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(summary.title(simulation))}</title>
<style>{CSS}</style>
<script>{plotly_js}</script>
</head>
<body>
<header>
<h1>{escape(summary.title(simulation))}</h1>
<p class="sub">{escape(summary.subtitle(simulation, plan))}</p>
{summary.cards_html(simulation, plan)}
<nav>{nav}</nav>
</header>
<main>
{body}
</main>
<footer>Written by rlplan from the plan with input digest {escape(digest)}. Times are virtual: the simulated
backend prices every call with the plan's cost model.</footer>
</body>
</html>
"""


def _section_html(section: Section) -> str:
    parts = "\n".join(p.to_html() if isinstance(p, Chart) else p for p in section.parts if p)
    return (f'<section id="{section.anchor}"><h2>{escape(section.title)}</h2>'
            f'<div class="explain">{section.explanation}</div>\n{parts}</section>')


CSS = f"""
body {{ font-family: {FONT}; color: #222; background: #f6f7f9; margin: 0; line-height: 1.45; }}
header, main, footer {{ max-width: 1320px; margin: 0 auto; padding: 0 24px; }}
header {{ padding-top: 20px; }}
h1 {{ font-size: 26px; margin: 8px 0 2px; }}
.sub {{ color: #555; margin: 0 0 14px; }}
.cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px; }}
.card {{ background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 10px 14px; }}
.card .label {{ font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #667; }}
.card .value {{ font-size: 22px; font-weight: 600; margin: 2px 0; }}
.card .detail {{ font-size: 13px; color: #555; }}
nav {{ margin: 14px 0 4px; font-size: 14px; }}
nav a {{ color: #2f5d8a; margin-right: 14px; text-decoration: none; }}
nav a:hover {{ text-decoration: underline; }}
section {{ background: #fff; border: 1px solid #dde1e6; border-radius: 8px; margin: 16px 0; padding: 6px 20px 16px; }}
h2 {{ font-size: 20px; margin: 10px 0 4px; }}
.explain {{ color: #444; max-width: 980px; }}
.explain p {{ margin: 4px 0 8px; }}
.plotly-graph-div {{ margin: 6px 0; }}
table {{ border-collapse: collapse; margin: 10px 0; font-size: 13.5px; }}
th, td {{ border-bottom: 1px solid #e3e6ea; padding: 4px 10px; text-align: left; white-space: nowrap; }}
th {{ background: #f1f3f5; font-weight: 600; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.wrap td {{ white-space: normal; }}
table.wrap td.num {{ white-space: nowrap; }}
code {{ background: #f1f3f5; padding: 0 4px; border-radius: 3px; }}
.path {{ font-size: 14px; }}
footer {{ color: #777; font-size: 12.5px; padding-bottom: 24px; }}
"""
