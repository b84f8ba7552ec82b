/**
 * The report's own plotting script (no library, no network): it reads the JSON embedded in the page
 * (`#report-data`) and draws inline SVG line plots and a heatmap with hover tooltips and a per-class
 * toggle. Every series is a `<g class="series">` holding one `<path>` and one `<circle class="point">`
 * per value, every heatmap cell a `<rect class="cell">`, so tests can count them.
 */
export const PLOT_SCRIPT = String.raw`
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var tip = document.getElementById('tooltip');
  var PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

  function color(i) {
    return i < PALETTE.length ? PALETTE[i] : 'hsl(' + ((i * 137.5) % 360).toFixed(1) + ',60%,45%)';
  }
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v) {
    return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4);
  }
  function showTip(evt, text) {
    tip.textContent = text;
    tip.style.left = evt.pageX + 12 + 'px';
    tip.style.top = evt.pageY + 12 + 'px';
    tip.hidden = false;
  }
  function hideTip() {
    tip.hidden = true;
  }
  function hover(node, text) {
    var t = el('title', {}, node);
    t.textContent = text;
    node.addEventListener('mouseenter', function (e) { showTip(e, text); });
    node.addEventListener('mousemove', function (e) { showTip(e, text); });
    node.addEventListener('mouseleave', hideTip);
  }
  function niceTicks(lo, hi, n) {
    var span = hi - lo || 1;
    var step = Math.pow(10, Math.floor(Math.log10(span / n)));
    var err = span / n / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var ticks = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return ticks;
  }

  // opts: { title, xLabels, xNames, yLabel, series: [{ id, name, values, color, width, dash, cls, band }] }
  function linePlot(host, opts) {
    var W = 720, H = 340, m = { l: 60, r: 20, t: 20, b: 46 };
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'plot', role: 'img', 'aria-label': opts.title }, host);
    var lo = Infinity, hi = -Infinity;
    opts.series.forEach(function (s) {
      s.values.forEach(function (v, i) {
        var b = s.band ? s.band[i] : 0;
        lo = Math.min(lo, v - b); hi = Math.max(hi, v + b);
      });
    });
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
    var pad = (hi - lo) * 0.06; lo -= pad; hi += pad;
    var n = opts.xLabels.length;
    var x = function (i) { return m.l + (n <= 1 ? (W - m.l - m.r) / 2 : (i * (W - m.l - m.r)) / (n - 1)); };
    var y = function (v) { return m.t + ((hi - v) * (H - m.t - m.b)) / (hi - lo); };
    var axes = el('g', { class: 'axes' }, svg);
    niceTicks(lo, hi, 6).forEach(function (t) {
      el('line', { x1: m.l, x2: W - m.r, y1: y(t), y2: y(t), class: 'grid' }, axes);
      var label = el('text', { x: m.l - 6, y: y(t) + 4, 'text-anchor': 'end' }, axes);
      label.textContent = +t.toPrecision(6) + '';
    });
    opts.xLabels.forEach(function (lab, i) {
      var label = el('text', { x: x(i), y: H - m.b + 18, 'text-anchor': 'middle' }, axes);
      label.textContent = lab;
      if (opts.xNames && opts.xNames[i]) hover(label, opts.xNames[i]);
    });
    var xt = el('text', { x: (m.l + W - m.r) / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis-title' }, axes);
    xt.textContent = opts.xTitle || 'conv layer';
    var yt = el('text', { x: 14, y: (m.t + H - m.b) / 2, 'text-anchor': 'middle', class: 'axis-title', transform: 'rotate(-90 14 ' + (m.t + H - m.b) / 2 + ')' }, axes);
    yt.textContent = opts.yLabel;
    opts.series.forEach(function (s) {
      var g = el('g', { class: 'series', 'data-series': s.id }, svg);
      if (s.cls !== undefined) g.setAttribute('data-class', s.cls);
      if (s.band) {
        var up = s.values.map(function (v, i) { return x(i) + ',' + y(v + s.band[i]); });
        var down = s.values.map(function (v, i) { return x(i) + ',' + y(v - s.band[i]); }).reverse();
        el('polygon', { points: up.concat(down).join(' '), fill: s.color, opacity: 0.12, class: 'band' }, g);
      }
      var d = s.values.map(function (v, i) { return (i ? 'L' : 'M') + x(i).toFixed(2) + ' ' + y(v).toFixed(2); }).join(' ');
      el('path', { d: d, fill: 'none', stroke: s.color, 'stroke-width': s.width || 1.5, 'stroke-dasharray': s.dash || 'none' }, g);
      s.values.forEach(function (v, i) {
        var c = el('circle', { cx: x(i), cy: y(v), r: s.width > 2 ? 4 : 3, fill: s.color, class: 'point' }, g);
        hover(c, s.name + ' · layer ' + opts.xLabels[i] + ': ' + fmt(v) + (s.band ? ' ± ' + fmt(s.band[i]) : ''));
      });
    });
    return svg;
  }

  function legend(host, series) {
    var box = document.createElement('div');
    box.className = 'legend';
    series.forEach(function (s) {
      var item = document.createElement('span');
      item.className = 'legend-item';
      var swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = s.color;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(s.name));
      box.appendChild(item);
    });
    host.appendChild(box);
  }

  // opts: { title, rowLabels, colLabels, values (row-major) }
  function heatmap(host, opts) {
    var rows = opts.rowLabels.length, cols = opts.colLabels.length;
    var cell = Math.max(18, Math.min(44, Math.floor(560 / Math.max(rows, cols))));
    var m = { l: 110, t: 100 };
    var W = m.l + cols * cell + 10, H = m.t + rows * cell + 10;
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'heatmap', role: 'img', 'aria-label': opts.title }, host);
    svg.style.maxWidth = W + 'px';
    opts.colLabels.forEach(function (lab, c) {
      var cx = m.l + c * cell + cell / 2;
      var t = el('text', { x: cx, y: m.t - 6, transform: 'rotate(-50 ' + cx + ' ' + (m.t - 6) + ')' }, svg);
      t.textContent = lab;
    });
    opts.rowLabels.forEach(function (lab, r) {
      var t = el('text', { x: m.l - 6, y: m.t + r * cell + cell / 2 + 4, 'text-anchor': 'end' }, svg);
      t.textContent = lab;
      for (var c = 0; c < cols; c++) {
        var v = opts.values[r * cols + c];
        var light = Math.round(97 - 62 * Math.max(0, Math.min(1, v)));
        var rect = el('rect', {
          x: m.l + c * cell, y: m.t + r * cell, width: cell - 1, height: cell - 1,
          fill: 'hsl(212,70%,' + light + '%)', class: 'cell' + (opts.diagonal && opts.diagonal[r] === c ? ' diagonal' : ''),
        }, svg);
        hover(rect, 'average of ' + lab + ' → ' + opts.colLabels[c] + ': ' + fmt(v));
        if (cell >= 30) {
          var txt = el('text', { x: m.l + c * cell + cell / 2, y: m.t + r * cell + cell / 2 + 4, 'text-anchor': 'middle', class: light < 60 ? 'on-dark' : '' }, svg);
          txt.textContent = v.toFixed(2);
        }
      }
    });
    return svg;
  }

  var names = data.classNames;
  var className = function (c) { return names[c] !== undefined ? names[c] : 'class ' + c; };

  var curves = data.curves;
  if (curves) {
    var L = curves.layers.length;
    var xLabels = curves.layers.map(String);
    var xNames = curves.layers.map(function (l) { return data.layerNames && data.layerNames[l] ? data.layerNames[l] : ''; });
    var perClass = function (arr, ci) { return arr.slice(ci * L, (ci + 1) * L); };
    var meanSeries = curves.classes.map(function (c, ci) {
      return { id: 'class-' + c, name: className(c), values: perClass(curves.mean, ci), color: color(c), width: 1.5, cls: c };
    });
    meanSeries.push({ id: 'mean-over-classes', name: 'mean over classes', values: curves.meanOverClasses, color: '#111', width: 3, band: curves.stdOverClasses });
    linePlot(document.getElementById('plot-mean'), { title: 'similarity mean per layer', xLabels: xLabels, xNames: xNames, yLabel: 'mean similarity', series: meanSeries });
    var stdSeries = curves.classes.map(function (c, ci) {
      return { id: 'class-' + c, name: className(c), values: perClass(curves.std, ci), color: color(c), width: 1.5, cls: c };
    });
    linePlot(document.getElementById('plot-std'), { title: 'similarity standard deviation per layer', xLabels: xLabels, xNames: xNames, yLabel: 'std of similarity', series: stdSeries });

    var toggles = document.getElementById('class-toggles');
    curves.classes.forEach(function (c) {
      var label = document.createElement('label');
      label.className = 'toggle';
      var box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = true;
      box.setAttribute('data-class', c);
      box.addEventListener('change', function () {
        var groups = document.querySelectorAll('g.series[data-class="' + c + '"]');
        for (var i = 0; i < groups.length; i++) groups[i].style.display = box.checked ? '' : 'none';
      });
      var swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = color(c);
      label.appendChild(box);
      label.appendChild(swatch);
      label.appendChild(document.createTextNode(className(c)));
      toggles.appendChild(label);
    });
  }

  if (data.confidence) {
    var rowsLab = data.confidence.rowClasses.map(className);
    var colsLab = names.length ? names.slice() : [];
    var cols = data.confidence.probabilities.length / Math.max(1, rowsLab.length);
    for (var k = colsLab.length; k < cols; k++) colsLab.push('class ' + k);
    heatmap(document.getElementById('plot-confidence'), {
      title: 'confidence of the class averages', rowLabels: rowsLab, colLabels: colsLab.slice(0, cols),
      values: data.confidence.probabilities, diagonal: data.confidence.rowClasses,
    });
  }

  if (data.sanity && curves) {
    var depthSeries = data.sanity.map(function (d, i) {
      return {
        id: 'depth-' + d.depth, name: d.depth === 0 ? 'trained' : 'top ' + d.depth + ' re-initialised', values: d.meanOverClasses,
        color: d.depth === 0 ? '#111' : 'hsl(' + (10 + (300 * i) / Math.max(1, data.sanity.length)).toFixed(0) + ',65%,50%)',
        width: d.depth === 0 ? 3 : 1.5, dash: d.depth === 0 ? 'none' : '5 3',
      };
    });
    var sanityHost = document.getElementById('plot-sanity');
    linePlot(sanityHost, { title: 'sanity check', xLabels: curves.layers.map(String), yLabel: 'mean similarity over classes', series: depthSeries });
    legend(sanityHost, depthSeries);
  }
  document.body.setAttribute('data-plots-ready', 'true');
})();
`;
