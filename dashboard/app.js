// The dashboard page: polls /dashboard/state and draws it. Plain browser
// JavaScript, no build step; echarts comes from the server (the installed
// package). Text from the server is set with textContent, never as HTML.
'use strict';

(function dashboard() {
  const params = new URLSearchParams(location.search);
  const intervalMs = Math.min(10000, Math.max(100, Number(params.get('interval')) || 1000));
  const WINDOW = 120; // points kept per chart
  const history = { time: [], throughput: [], waiting: [], running: [], kv: [], prefix: [] };
  const charts = {};
  let previous = null;
  let key = sessionStorage.getItem('tessera-dashboard-key') || '';

  const byId = (id) => document.getElementById(id);

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function lineChart(id, series, percent) {
    const chart = echarts.init(byId(id));
    chart.setOption({
      animation: false,
      grid: { left: 48, right: 16, top: 24, bottom: 24 },
      legend: { top: 0, show: series.length > 1 },
      tooltip: { trigger: 'axis' },
      xAxis: { type: 'category', data: [] },
      yAxis: percent ? { type: 'value', min: 0, max: 100, axisLabel: { formatter: '{value}%' } } : { type: 'value', min: 0 },
      series: series.map((name) => ({ name, type: 'line', showSymbol: false, data: [] })),
    });
    charts[id] = chart;
  }

  function setUpCharts() {
    if (typeof echarts === 'undefined') {
      document.body.dataset.charts = 'missing';
      return;
    }
    lineChart('throughput', ['tokens/s']);
    lineChart('queue', ['running', 'waiting']);
    lineChart('kv', ['KV use'], true);
    lineChart('prefix', ['prefix hits'], true);
    const heat = echarts.init(byId('experts'));
    heat.setOption({
      animation: false,
      grid: { left: 64, right: 96, top: 28, bottom: 40 },
      tooltip: { position: 'top' },
      xAxis: { type: 'category', name: 'expert', data: [] },
      yAxis: { type: 'category', name: 'layer', data: [] },
      visualMap: { min: 0, max: 1, calculable: true, orient: 'vertical', right: 8, top: 'middle' },
      series: [{ type: 'heatmap', data: [] }],
    });
    charts.experts = heat;
    document.body.dataset.charts = 'ready';
  }

  function push(name, value) {
    const list = history[name];
    list.push(value);
    if (list.length > WINDOW) list.shift();
  }

  function record(state) {
    const seconds = previous ? (state.at - previous.at) / 1000 : 0;
    const tokens = previous ? state.totals.generatedTokens - previous.totals.generatedTokens : 0;
    push('time', new Date(state.at).toLocaleTimeString());
    push('throughput', seconds > 0 ? Math.max(0, tokens / seconds) : 0);
    push('running', state.engine.running);
    push('waiting', state.engine.waiting);
    push('kv', 100 * state.engine.kvUse);
    push('prefix', 100 * state.engine.prefixHitRate);
    previous = state;
  }

  function drawLines() {
    if (!charts.throughput) return;
    const x = { xAxis: { data: history.time } };
    charts.throughput.setOption({ ...x, series: [{ data: history.throughput }] });
    charts.queue.setOption({ ...x, series: [{ data: history.running }, { data: history.waiting }] });
    charts.kv.setOption({ ...x, series: [{ data: history.kv }] });
    charts.prefix.setOption({ ...x, series: [{ data: history.prefix }] });
  }

  function drawExperts(experts) {
    const empty = experts.tokens.length === 0;
    byId('no-experts').hidden = !empty;
    byId('experts').style.display = empty ? 'none' : '';
    if (empty || !charts.experts) return;
    const cells = [];
    let max = 1;
    experts.tokens.forEach((row, y) => row.forEach((count, x) => { cells.push([x, y, count]); max = Math.max(max, count); }));
    const columns = Math.max(...experts.tokens.map((row) => row.length));
    charts.experts.resize();
    charts.experts.setOption({
      xAxis: { data: Array.from({ length: columns }, (_, i) => String(i)) },
      yAxis: { data: experts.layers.map(String) },
      visualMap: { max },
      series: [{ data: cells }],
    });
  }

  function drawTopology(state) {
    const box = byId('topology');
    box.replaceChildren();
    const topology = state.topology;
    if (!topology) return;
    for (const replica of topology.replicas) {
      const card = element('div', 'replica');
      card.append(element('div', 'name', replica.name), element('div', 'status', replica.status));
      const extra = [];
      if (replica.load !== undefined) extra.push(`load ${replica.load}`);
      if (replica.kvUse !== undefined) extra.push(`KV ${(100 * replica.kvUse).toFixed(0)}%`);
      if (extra.length) card.append(element('div', 'load', extra.join(' · ')));
      const stages = new Map();
      for (const rank of replica.ranks) {
        if (!stages.has(rank.stage)) stages.set(rank.stage, element('div', 'stage'));
        const cell = element('div', `rank ${rank.status}`, `r${rank.rank}`);
        cell.title = `rank ${rank.rank}: stage ${rank.stage}, tp ${rank.tpIndex}, ${rank.status}`;
        stages.get(rank.stage).append(cell);
      }
      for (const stage of [...stages.keys()].sort((a, b) => a - b)) card.append(stages.get(stage));
      box.append(card);
    }
  }

  function drawEvents(events) {
    const body = byId('events');
    body.replaceChildren();
    for (const event of [...events].reverse()) {
      const row = element('tr');
      row.append(element('td', '', new Date(event.at).toLocaleTimeString()), element('td', '', event.kind), element('td', '', event.text));
      body.append(row);
    }
    byId('no-events').hidden = events.length > 0;
  }

  function drawHeader(state) {
    const model = state.model;
    byId('model').textContent = model ? `${model.name} · ${model.backend} · ${model.numBlocks} ${model.kvCacheDtype} KV blocks of ${model.blockSize}` : 'loading…';
    const health = byId('health');
    const word = state.health.ready ? 'up' : state.health.status;
    health.textContent = word;
    health.className = `badge ${word.split(' ')[0]}`;
    const topology = state.topology;
    byId('layout').textContent = topology ? `${topology.kind}${topology.kind === 'router' ? ` over ${topology.replicas.length} replicas` : ` · tp ${topology.layout.tp} pp ${topology.layout.pp}${topology.layout.ep > 1 ? ` ep ${topology.layout.ep}` : ''}`}` : '';
    byId('totals').textContent = `${state.totals.requests} completion requests · ${state.totals.promptTokens} prompt tokens · ${state.totals.generatedTokens} generated tokens · ${state.engine.preemptions} preemptions`;
  }

  function askForKey(problem) {
    byId('key-form').hidden = false;
    byId('key-problem').textContent = problem;
  }

  async function poll() {
    let response;
    try {
      response = await fetch('/dashboard/state', { headers: key ? { authorization: `Bearer ${key}` } : {}, cache: 'no-store' });
    } catch {
      byId('health').textContent = 'unreachable';
      return;
    }
    if (response.status === 401 || response.status === 403) return askForKey(response.status === 401 ? 'a key is needed' : 'that key lacks the metrics scope');
    if (!response.ok) {
      byId('health').textContent = `error ${response.status}`;
      return;
    }
    byId('key-form').hidden = true;
    const state = await response.json();
    record(state);
    drawHeader(state);
    drawTopology(state);
    drawLines();
    drawExperts(state.experts);
    drawEvents(state.events);
    document.body.dataset.samples = String(Number(document.body.dataset.samples) + 1);
  }

  byId('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    key = byId('key').value.trim();
    sessionStorage.setItem('tessera-dashboard-key', key);
    void poll();
  });
  window.addEventListener('resize', () => Object.values(charts).forEach((chart) => chart.resize()));

  setUpCharts();
  void poll();
  setInterval(() => void poll(), intervalMs);
})();
