/**
 * The reproduction's figures: class-average grids and confidence heatmaps as PNG, curves as SVG.
 * Pure functions of the numbers; no I/O.
 */
import { PNG } from 'pngjs';
import type { ConfidenceMatrixResponse } from '../../api/generated/introspect/v1/analysis';

type Rgb = [number, number, number];

function blank(width: number, height: number, fill: Rgb = [255, 255, 255]): PNG {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    png.data[i * 4] = fill[0];
    png.data[i * 4 + 1] = fill[1];
    png.data[i * 4 + 2] = fill[2];
    png.data[i * 4 + 3] = 255;
  }
  return png;
}

function fillRect(png: PNG, x0: number, y0: number, w: number, h: number, c: Rgb): void {
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) {
      const o = (y * png.width + x) * 4;
      png.data[o] = c[0];
      png.data[o + 1] = c[1];
      png.data[o + 2] = c[2];
    }
  }
}

/** Rows of class-average PNGs (one row per kind), each image scaled up by `scale`, 4 px gaps. */
export function averagesGrid(rows: Buffer[][], scale = 2): Buffer {
  const tiles = rows.map((r) => r.map((b) => PNG.sync.read(b)));
  const tw = Math.max(...tiles.flat().map((t) => t.width)) * scale;
  const th = Math.max(...tiles.flat().map((t) => t.height)) * scale;
  const gap = 4;
  const cols = Math.max(...tiles.map((r) => r.length));
  const out = blank(cols * (tw + gap) + gap, tiles.length * (th + gap) + gap);
  tiles.forEach((row, r) =>
    row.forEach((t, c) => {
      for (let y = 0; y < t.height * scale; y++) {
        for (let x = 0; x < t.width * scale; x++) {
          const si = (Math.floor(y / scale) * t.width + Math.floor(x / scale)) * 4;
          const di = ((gap + r * (th + gap) + y) * out.width + gap + c * (tw + gap) + x) * 4;
          out.data[di] = t.data[si]!;
          out.data[di + 1] = t.data[si + 1]!;
          out.data[di + 2] = t.data[si + 2]!;
        }
      }
    }),
  );
  return PNG.sync.write(out);
}

/** Confidence matrices side by side as heatmaps (white 0 → dark blue 1), `cell` px per entry. */
export function heatmaps(matrices: ConfidenceMatrixResponse[], cell = 14): Buffer {
  const gap = 12;
  const size = (m: ConfidenceMatrixResponse): [number, number] => [m.classes * cell, m.n * cell];
  const width = matrices.reduce((s, m) => s + size(m)[0] + gap, gap);
  const height = Math.max(...matrices.map((m) => size(m)[1])) + 2 * gap;
  const out = blank(width, height);
  let x0 = gap;
  for (const m of matrices) {
    for (let r = 0; r < m.n; r++) {
      for (let c = 0; c < m.classes; c++) {
        const p = Math.min(1, Math.max(0, m.probabilities[r * m.classes + c] ?? 0));
        const colour: Rgb = [Math.round(255 - 247 * p), Math.round(255 - 207 * p), Math.round(255 - 148 * p)];
        fillRect(out, x0 + c * cell, gap + r * cell, cell - 1, cell - 1, colour);
      }
    }
    x0 += size(m)[0] + gap;
  }
  return PNG.sync.write(out);
}

export interface Curve {
  label: string;
  values: number[];
  colour: string;
  width?: number;
  dash?: boolean;
}

/** A line chart as SVG text: x = conv layer, y = value. */
export function curvesSvg(title: string, xLabels: number[], curves: Curve[], yLabel = 'similarity'): string {
  const W = 560;
  const H = 320;
  const L = 60;
  const R = 150;
  const T = 30;
  const B = 40;
  const all = curves.flatMap((c) => c.values).filter(Number.isFinite);
  let lo = Math.min(0, ...all);
  let hi = Math.max(...all, lo + 1e-6);
  const pad = (hi - lo) * 0.05;
  lo -= pad;
  hi += pad;
  const px = (i: number): number => L + (xLabels.length > 1 ? (i * (W - L - R)) / (xLabels.length - 1) : 0);
  const py = (v: number): number => T + ((hi - v) * (H - T - B)) / (hi - lo);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2 - R / 2}" y="18" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`);
  for (let t = 0; t <= 4; t++) {
    const v = lo + ((hi - lo) * t) / 4;
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${py(v).toFixed(1)}" y2="${py(v).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 6}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(3)}</text>`);
  }
  xLabels.forEach((x, i) => parts.push(`<text x="${px(i).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${x}</text>`));
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">conv layer</text>`);
  parts.push(`<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(T + H - B) / 2})">${escapeXml(yLabel)}</text>`);
  curves.forEach((c, ci) => {
    const pts = c.values.map((v, i) => `${px(i).toFixed(1)},${py(Number.isFinite(v) ? v : 0).toFixed(1)}`).join(' ');
    parts.push(
      `<polyline points="${pts}" fill="none" stroke="${c.colour}" stroke-width="${c.width ?? 1}"${c.dash ? ' stroke-dasharray="4 3"' : ''}/>`,
    );
    const ly = T + 6 + ci * 14;
    parts.push(`<line x1="${W - R + 10}" x2="${W - R + 30}" y1="${ly}" y2="${ly}" stroke="${c.colour}" stroke-width="${c.width ?? 1}"${c.dash ? ' stroke-dasharray="4 3"' : ''}/>`);
    parts.push(`<text x="${W - R + 34}" y="${ly + 4}">${escapeXml(c.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
