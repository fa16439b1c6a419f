/**
 * The self-contained HTML report of `tessera profile`: the summary, tables of
 * every phase's time breakdown and op verdicts, and — when a charting
 * library's source is given (the CLI inlines Apache ECharts when the
 * `echarts` package is installed) — a roofline chart with the ops as points,
 * a stacked time breakdown per phase and rank, and a per-rank summary.
 */
import type { Profile } from './profile-report.js';
import { TIME_CATEGORIES } from './trace-attribution.js';

const escapeHtml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** JSON inside a <script>: no "</script>" or "<!--" can end or bend it. */
const scriptJson = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

function tables(profile: Profile): string {
  const categories = [...TIME_CATEGORIES, 'driver'] as const;
  const head = `<tr><th>rank</th><th>phase</th><th>tokens</th><th>ms/token</th>${categories.map((c) => `<th>${c}</th>`).join('')}<th>GB/s (of triad)</th><th>bottleneck</th></tr>`;
  const rows = profile.phases.map(
    (p) =>
      `<tr><td>${p.rank}</td><td>${p.phase}</td><td>${p.tokens}</td><td>${p.msPerToken.toFixed(2)}</td>${categories.map((c) => `<td>${p.breakdown[c].toFixed(2)}</td>`).join('')}<td>${p.bandwidthGBs.toFixed(1)} (${(p.bandwidthFraction * 100).toFixed(0)}%)</td><td>${p.bottleneck} (${(p.share * 100).toFixed(0)}%)</td></tr>`,
  );
  const ops = profile.phases.flatMap((p) =>
    p.ops.map(
      (op) =>
        `<tr><td>${p.rank}</td><td>${p.phase}</td><td>${escapeHtml(op.key)}</td><td>${op.calls}</td><td>${op.ms.toFixed(2)}</td><td>${op.achievedGBs.toFixed(1)}</td><td>${op.achievedGflops.toFixed(1)}</td><td>${Number.isFinite(op.intensity) ? op.intensity.toFixed(2) : '–'}</td><td>${(op.fraction * 100).toFixed(0)}% of ${op.limit}</td><td>${op.verdict}</td></tr>`,
    ),
  );
  return `<h2>Time per token (ms)</h2><table>${head}${rows.join('')}</table>
<h2>Ops</h2><table><tr><th>rank</th><th>phase</th><th>op</th><th>calls</th><th>ms</th><th>GB/s</th><th>GFLOP/s</th><th>FLOP/byte</th><th>of limit</th><th>verdict</th></tr>${ops.join('')}</table>`;
}

/** The charts, built from the embedded profile by the inlined library (ECharts' API). */
const CHART_SCRIPT = `
const profile = JSON.parse(document.getElementById('profile-data').textContent);
const limits = profile.limits;
const points = profile.phases.flatMap((p) => p.ops.filter((op) => op.achievedGflops > 0 && Number.isFinite(op.intensity)).map((op) => ({ name: 'rank ' + p.rank + ' ' + p.phase + ': ' + op.key, value: [op.intensity, op.achievedGflops], phase: p.phase })));
const xs = points.map((p) => p.value[0]);
const lo = Math.max(1e-3, Math.min(...xs, 0.1) / 2), hi = Math.max(...xs, 1000) * 2;
const roof = (peak) => [[lo, Math.min(peak, limits.memoryBandwidthGBs * lo)], [peak / limits.memoryBandwidthGBs, peak], [hi, peak]];
echarts.init(document.getElementById('roofline')).setOption({
  title: { text: 'Roofline (ops as points)' }, tooltip: { formatter: (p) => p.name + '<br>' + p.value[0].toFixed(2) + ' FLOP/byte, ' + p.value[1].toFixed(1) + ' GFLOP/s' },
  legend: { top: 25 }, xAxis: { type: 'log', name: 'FLOP per byte', min: lo, max: hi }, yAxis: { type: 'log', name: 'GFLOP/s' },
  series: [
    { name: 'decode ops', type: 'scatter', data: points.filter((p) => p.phase === 'decode') },
    { name: 'prefill ops', type: 'scatter', data: points.filter((p) => p.phase === 'prefill') },
    { name: 'int8 roof', type: 'line', showSymbol: false, data: roof(limits.int8Gflops) },
    { name: 'f16 roof', type: 'line', showSymbol: false, data: roof(limits.f16Gflops) },
  ],
});
const categories = Object.keys(profile.phases[0]?.breakdown ?? {});
const labels = profile.phases.map((p) => 'rank ' + p.rank + ' ' + p.phase);
echarts.init(document.getElementById('breakdown')).setOption({
  title: { text: 'Time per token by category (ms)' }, tooltip: { trigger: 'axis' }, legend: { top: 25 },
  xAxis: { type: 'category', data: labels }, yAxis: { type: 'value', name: 'ms per token' },
  series: categories.map((c) => ({ name: c, type: 'bar', stack: 'time', data: profile.phases.map((p) => p.breakdown[c]) })),
});
const decode = profile.phases.filter((p) => p.phase === 'decode');
echarts.init(document.getElementById('ranks')).setOption({
  title: { text: 'Per-rank decode step: computing, waiting, overhead (ms per token)' }, tooltip: { trigger: 'axis' }, legend: { top: 25 },
  yAxis: { type: 'category', data: decode.map((p) => 'rank ' + p.rank) }, xAxis: { type: 'value' },
  series: [
    { name: 'compute', type: 'bar', stack: 'r', data: decode.map((p) => p.breakdown.matmul + p.breakdown.attention + p.breakdown['kv-write'] + p.breakdown.pointwise) },
    { name: 'waiting', type: 'bar', stack: 'r', data: decode.map((p) => p.breakdown['communication-wait']) },
    { name: 'overhead', type: 'bar', stack: 'r', data: decode.map((p) => p.breakdown['step-overhead'] + p.breakdown.driver) },
  ],
});`;

export function profileHtml(profile: Profile, title: string, chartLibrary?: string): string {
  const charts = chartLibrary
    ? `<div id="roofline" class="chart"></div><div id="breakdown" class="chart"></div><div id="ranks" class="chart"></div>
<script>${chartLibrary.replace(/<\/script/gi, '<\\/script')}</script><script>${CHART_SCRIPT}</script>`
    : '<p><em>Charts need the <code>echarts</code> package (npm install echarts); the tables below hold the same data.</em></p>';
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f4f4f4}.chart{width:100%;height:420px;margin:1em 0}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p><strong>${escapeHtml(profile.summary)}</strong></p>
<p>Limits measured in this run: memory ${profile.limits.memoryBandwidthGBs.toFixed(1)} GB/s (STREAM triad), matmul ${profile.limits.int8Gflops.toFixed(0)} GFLOP/s with 8-bit blocks, ${profile.limits.f16Gflops.toFixed(0)} GFLOP/s with float weights.</p>
<script type="application/json" id="profile-data">${scriptJson(profile)}</script>
${charts}
${tables(profile)}
</body></html>
`;
}
