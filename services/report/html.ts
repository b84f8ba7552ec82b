/**
 * A self-contained HTML report of an analysis: no external resources (works offline), images as
 * data: URIs, plots drawn as inline SVG by the page's own small script (plot-script.ts) from JSON
 * embedded in the page.
 *
 * Sections (each only when its data is present): class averages with confidences, the confidence
 * heatmap, similarity mean / std curves per class with a class toggle, dead-neuron counts, per-layer
 * galleries of the highest and lowest neurons, the sanity-check overlay, and the parameters used.
 */
import { PLOT_SCRIPT } from './plot-script';
import type { ReportData, ReportGallery, ReportRankedNeuron } from './report-data';

export type { ReportData } from './report-data';

const STYLE = `
:root { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1b1b1b; background: #fafafa; }
body { max-width: 1180px; margin: 0 auto; padding: 16px 24px 64px; }
h1 { font-size: 1.6rem; margin-bottom: 4px; } h2 { margin-top: 40px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { margin: 20px 0 6px; font-size: 1.05rem; } .meta { color: #555; font-size: .9rem; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
figure { margin: 0; text-align: center; font-size: .78rem; background: #fff; border: 1px solid #e3e3e3; border-radius: 4px; padding: 6px; }
figure img { width: 96px; height: 96px; image-rendering: pixelated; display: block; margin: 0 auto 4px; }
.gallery figure img { width: 64px; height: 64px; }
figcaption b { display: block; }
svg.plot { width: 100%; max-width: 760px; background: #fff; border: 1px solid #e3e3e3; border-radius: 4px; }
svg.heatmap { width: 100%; background: #fff; border: 1px solid #e3e3e3; border-radius: 4px; }
svg text { font-size: 11px; fill: #333; } svg text.axis-title { font-size: 12px; fill: #555; } svg text.on-dark { fill: #fff; }
svg line.grid { stroke: #eee; } svg .point { cursor: pointer; } svg .band, svg .series path { pointer-events: none; } svg rect.cell.diagonal { stroke: #111; stroke-width: 1.5; }
#tooltip { position: absolute; pointer-events: none; background: #222; color: #fff; padding: 3px 7px; border-radius: 3px; font-size: 12px; white-space: nowrap; z-index: 10; }
.toggles { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 8px 0; font-size: .9rem; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 6px 0 12px; font-size: .85rem; }
.toggle { cursor: pointer; user-select: none; } .swatch { display: inline-block; width: 12px; height: 12px; margin: 0 4px; vertical-align: -1px; border-radius: 2px; }
table { border-collapse: collapse; font-size: .85rem; background: #fff; }
th, td { border: 1px solid #e3e3e3; padding: 3px 8px; text-align: right; } th { background: #f2f2f2; } td.key, th.key { text-align: left; }
td.value { text-align: left; font-family: ui-monospace, monospace; white-space: pre-wrap; }
.row-label { font-size: .8rem; color: #555; margin: 6px 0 2px; } .dead { color: #a33; font-size: .8rem; }
`;

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** JSON safe inside a <script> element (no `</script>`, no `<!--`, no line separators). */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png.buffer, png.byteOffset, png.byteLength).toString('base64')}`;
}

const num = (v: number, digits = 3): string => (Number.isFinite(v) ? v.toFixed(digits) : String(v));

function className(data: ReportData, c: number): string {
  return data.classNames[c] ?? `class ${c}`;
}

function layerName(data: ReportData, l: number): string {
  const name = data.layerNames?.[l];
  return name ? `conv ${l} (${name})` : `conv ${l}`;
}

function header(data: ReportData): string {
  const meta = [
    `model <b>${escapeHtml(data.modelName)}</b>`,
    data.modelSha256 ? `sha256 <code>${escapeHtml(data.modelSha256.slice(0, 16))}…</code>` : '',
    data.dataset ? `data set <b>${escapeHtml(data.dataset)}</b>` : '',
    data.generatedAt ? `made ${escapeHtml(data.generatedAt)}` : '',
  ].filter(Boolean);
  return `<header><h1>${escapeHtml(data.title)}</h1><p class="meta">${meta.join(' · ')}</p></header>`;
}

function averagesSection(data: ReportData): string {
  if (!data.averages || data.averages.length === 0) return '';
  const figures = data.averages.map((a) => {
    const name = className(data, a.classIndex);
    const extra = [
      a.predicted !== a.classIndex ? `predicted ${escapeHtml(className(data, a.predicted))}` : 'predicted correctly',
      a.imagesUsed !== undefined ? `${a.imagesUsed} images` : '',
      a.steps !== undefined ? `${a.steps} steps` : '',
    ].filter(Boolean);
    return `<figure><img src="${pngDataUri(a.png)}" alt="class average of ${escapeHtml(name)}"><figcaption><b>${escapeHtml(name)}</b>p = ${num(a.confidence)}<br>${extra.join('<br>')}</figcaption></figure>`;
  });
  return `<section id="averages"><h2>Class averages</h2><div class="grid">${figures.join('')}</div></section>`;
}

function confidenceSection(data: ReportData): string {
  if (!data.confidence) return '';
  return `<section id="confidence"><h2>Confidence of the class averages</h2><p class="meta">Row: the average image of a class; column: softmax probability of each class. Hover for values.</p><div id="plot-confidence"></div></section>`;
}

function curvesSection(data: ReportData): string {
  if (!data.curves) return '';
  return `<section id="curves"><h2>Similarity across layers</h2>
<p class="meta">Mean and standard deviation over each layer's neurons, per class (dead neurons count as 0); the thick line is the mean over classes with ± its standard deviation over classes. Toggle classes below; hover points for values.</p>
<div id="class-toggles" class="toggles"></div>
<h3>Mean</h3><div id="plot-mean"></div>
<h3>Standard deviation</h3><div id="plot-std"></div></section>`;
}

function deadSection(data: ReportData): string {
  const c = data.curves;
  if (!c) return '';
  const L = c.layers.length;
  const channels = new Map<number, number>();
  for (const g of data.galleries ?? []) channels.set(g.layer, g.channels);
  const head = c.layers.map((l) => `<th title="${escapeHtml(layerName(data, l))}">${l}${channels.has(l) ? ` <small>/${channels.get(l)}</small>` : ''}</th>`).join('');
  const rows = c.classes.map((cls, ci) => {
    const cells = c.layers.map((_, li) => `<td>${c.deadCount[ci * L + li]}</td>`).join('');
    return `<tr><td class="key">${escapeHtml(className(data, cls))}</td>${cells}</tr>`;
  });
  return `<section id="dead"><h2>Dead neurons</h2><p class="meta">Neurons whose image is all zeros, per class and conv layer.</p><table><thead><tr><th class="key">class \\ layer</th>${head}</tr></thead><tbody>${rows.join('')}</tbody></table></section>`;
}

function neuronFigures(list: ReportRankedNeuron[], kind: string): string {
  return list
    .map((n) => `<figure><img src="${pngDataUri(n.png)}" alt="${kind} neuron ${n.neuron}"><figcaption><b>#${n.neuron}</b>${num(n.value)}</figcaption></figure>`)
    .join('');
}

function galleriesSection(data: ReportData): string {
  const galleries = data.galleries ?? [];
  if (galleries.length === 0) return '';
  const byLayer = new Map<number, ReportGallery[]>();
  for (const g of galleries) byLayer.set(g.layer, [...(byLayer.get(g.layer) ?? []), g]);
  const layers = [...byLayer.keys()].sort((a, b) => a - b);
  const parts = layers.map((l) => {
    const blocks = byLayer.get(l)!.map((g) => {
      const dead = g.dead.length > 0 ? `<p class="dead">dead (${g.dead.length}): ${g.dead.join(', ')}</p>` : '';
      return `<h3>${escapeHtml(className(data, g.classIndex))}</h3>
<p class="row-label">highest</p><div class="grid gallery">${neuronFigures(g.highest, 'highest')}</div>
<p class="row-label">lowest</p><div class="grid gallery">${neuronFigures(g.lowest, 'lowest')}</div>${dead}`;
    });
    return `<details open><summary><b>${escapeHtml(layerName(data, l))}</b></summary>${blocks.join('')}</details>`;
  });
  return `<section id="galleries"><h2>Highest and lowest neurons per layer</h2>${parts.join('')}</section>`;
}

function sanitySection(data: ReportData): string {
  if (!data.sanity || data.sanity.length === 0 || !data.curves) return '';
  const trained = data.sanity.find((d) => d.depth === 0);
  const rows = data.sanity.map((d) => {
    const diff = trained ? Array.from(d.meanOverClasses, (v, i) => v - trained.meanOverClasses[i]) : [];
    const maxAbs = diff.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    return `<tr><td>${d.depth}</td><td class="key">${escapeHtml(d.reinitialised.join(', ') || '(trained)')}</td><td>${num(maxAbs)}</td></tr>`;
  });
  return `<section id="sanity"><h2>Sanity check (cascading re-initialisation)</h2>
<p class="meta">Mean similarity over classes per layer on the trained model and on copies whose top layers were re-initialised (dense first, then conv, from the output).</p>
<div id="plot-sanity"></div><table><thead><tr><th>depth</th><th class="key">re-initialised</th><th>max |difference|</th></tr></thead><tbody>${rows.join('')}</tbody></table></section>`;
}

function parametersSection(data: ReportData): string {
  const rows = Object.keys(data.parameters)
    .sort()
    .map((k) => {
      const v = data.parameters[k];
      const text = typeof v === 'string' ? v : JSON.stringify(v, null, 1);
      return `<tr><td class="key">${escapeHtml(k)}</td><td class="value">${escapeHtml(text ?? String(v))}</td></tr>`;
    });
  return `<section id="parameters"><h2>Parameters</h2><table><tbody>${rows.join('')}</tbody></table></section>`;
}

/** The data the page's script plots (no images: those are in the markup). */
function plotData(data: ReportData): unknown {
  const arr = (a: ArrayLike<number>): number[] => Array.from(a, (v) => (Number.isFinite(v) ? v : 0));
  return {
    classNames: data.classNames,
    layerNames: data.layerNames ?? [],
    curves: data.curves && {
      classes: data.curves.classes,
      layers: data.curves.layers,
      mean: arr(data.curves.mean),
      std: arr(data.curves.std),
      meanOverClasses: arr(data.curves.meanOverClasses),
      stdOverClasses: arr(data.curves.stdOverClasses),
    },
    confidence: data.confidence && { rowClasses: data.confidence.rowClasses, probabilities: arr(data.confidence.probabilities) },
    sanity: data.sanity?.map((d) => ({ depth: d.depth, meanOverClasses: arr(d.meanOverClasses) })),
  };
}

export function renderReport(data: ReportData): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.title)}</title><style>${STYLE}</style></head>
<body>
${header(data)}
${averagesSection(data)}
${confidenceSection(data)}
${curvesSection(data)}
${deadSection(data)}
${galleriesSection(data)}
${sanitySection(data)}
${parametersSection(data)}
<div id="tooltip" hidden></div>
<script type="application/json" id="report-data">${scriptJson(plotData(data))}</script>
<script>${PLOT_SCRIPT}</script>
</body></html>
`;
}
