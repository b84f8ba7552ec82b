import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { renderReport, type ReportData } from '../../services/report/html';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A small RGB PNG with a gradient (encoded by pngjs, independent of the service's encoder). */
function png(w: number, h: number, seed: number): Uint8Array {
  const img = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) {
    img.data[4 * i] = (i * 7 + seed * 40) % 256;
    img.data[4 * i + 1] = (i * 3) % 256;
    img.data[4 * i + 2] = (seed * 90) % 256;
    img.data[4 * i + 3] = 255;
  }
  return new Uint8Array(PNG.sync.write(img));
}

const CLASSES = 3;
const LAYERS = [0, 1, 2, 3];

function sampleReport(): ReportData {
  const L = LAYERS.length;
  const mean = Array.from({ length: CLASSES * L }, (_, i) => 0.1 + 0.05 * (i % L) - 0.02 * Math.floor(i / L));
  const std = mean.map((v) => v / 3);
  const meanOverClasses = LAYERS.map((_, l) => (mean[l] + mean[L + l] + mean[2 * L + l]) / 3);
  const ranked = (seed: number) => [0, 1].map((k) => ({ neuron: seed * 10 + k, value: 0.5 - 0.1 * k, png: png(8, 8, seed + k) }));
  return {
    title: 'Report <test> & co',
    modelName: 'tiny',
    modelSha256: 'f'.repeat(64),
    dataset: 'cifar10',
    generatedAt: '2024-01-01T00:00:00Z',
    // a hostile class name must neither break the embedded JSON nor inject markup
    classNames: ['plane', '</script><b id="injected">x</b>', 'bird'],
    layerNames: ['conv0', 'conv1', 'conv2', 'conv3'],
    parameters: { method: 1, metric: 'cosine', layers: LAYERS, attribution: { method: 'guided', objective: 'abs_sum' } },
    averages: [0, 1, 2].map((c) => ({ classIndex: c, png: png(32, 32, c), confidence: 0.9 - 0.2 * c, predicted: c === 2 ? 0 : c, imagesUsed: 1000 })),
    confidence: { rowClasses: [0, 1, 2], probabilities: [0.9, 0.05, 0.05, 0.1, 0.7, 0.2, 0.5, 0.2, 0.3] },
    curves: { classes: [0, 1, 2], layers: LAYERS, mean, std, meanOverClasses, stdOverClasses: LAYERS.map(() => 0.02), deadCount: mean.map((_, i) => i % 3) },
    galleries: [0, 2].flatMap((layer) => [0, 1, 2].map((c) => ({ classIndex: c, layer, highest: ranked(c), lowest: ranked(c + 3), dead: c === 1 ? [5, 7] : [], channels: 64 }))),
    sanity: [0, 1, 2].map((depth) => ({ depth, reinitialised: ['fc2', 'fc1'].slice(0, depth), meanOverClasses: meanOverClasses.map((v) => v * (1 - 0.3 * depth)) })),
  };
}

describe('HTML report', () => {
  it('is self-contained: no external URLs, images inline, hostile names escaped', () => {
    const html = renderReport(sampleReport());
    assert.doesNotMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i);
    assert.equal((html.match(/<img src="data:image\/png;base64,/g) ?? []).length, 3 + 2 * 3 * 4);
    assert.doesNotMatch(html, /<b id="injected">/);
    assert.match(html, /<title>Report &lt;test&gt; &amp; co<\/title>/);
    assert.equal((html.match(/<\/script>/g) ?? []).length, 2); // only the two real script ends
  });

  describe('in headless Chromium', function () {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let browser: any;
    let file = '';

    before(async function () {
      if (!fs.existsSync(CHROMIUM)) {
        const reason = ` [pending: ${CHROMIUM} is absent (apt-get install chromium, or set CHROMIUM_PATH)]`;
        for (const t of this.test!.parent!.tests) t.title += reason;
        this.skip();
      }
      const { chromium } = await import('playwright-core');
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'report-')), 'report.html');
      fs.writeFileSync(file, renderReport(sampleReport()));
    });

    after(async () => {
      await browser?.close();
      if (file) fs.rmSync(path.dirname(file), { recursive: true, force: true });
    });

    it('loads offline without console errors; plots have the expected series and points; images decode; toggle and hover work', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      const errors: string[] = [];
      const external: string[] = [];
      page.on('console', (m: { type(): string; text(): string }) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e: Error) => errors.push(e.message));
      await page.route('**/*', (route: { request(): { url(): string }; abort(): Promise<void>; continue(): Promise<void> }) => {
        const url = route.request().url();
        if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
        external.push(url);
        return route.abort();
      });
      await page.goto(`file://${file}`, { waitUntil: 'load' });
      await page.waitForSelector('body[data-plots-ready="true"]', { timeout: 10000 });
      assert.deepEqual(errors, []);
      assert.deepEqual(external, []);

      // Browser-side code goes in as source text (this project compiles without the DOM library).
      const counts = await page.evaluate(`(() => {
        const series = (id) => Array.from(document.querySelectorAll('#' + id + ' g.series'));
        const points = (id) => series(id).map((g) => g.querySelectorAll('circle.point').length);
        const imgs = Array.from(document.images);
        return {
          mean: series('plot-mean').length,
          meanPoints: points('plot-mean'),
          std: series('plot-std').length,
          stdPoints: points('plot-std'),
          sanity: series('plot-sanity').length,
          sanityPoints: points('plot-sanity'),
          cells: document.querySelectorAll('#plot-confidence rect.cell').length,
          toggles: document.querySelectorAll('#class-toggles input[type=checkbox]').length,
          images: imgs.length,
          decoded: imgs.filter((i) => i.complete && i.naturalWidth > 0).length,
          injected: document.getElementById('injected') !== null,
        };
      })()`);
      assert.equal(counts.mean, CLASSES + 1, 'one series per class plus the mean over classes');
      assert.deepEqual(counts.meanPoints, new Array(CLASSES + 1).fill(LAYERS.length));
      assert.equal(counts.std, CLASSES);
      assert.deepEqual(counts.stdPoints, new Array(CLASSES).fill(LAYERS.length));
      assert.equal(counts.sanity, 3);
      assert.deepEqual(counts.sanityPoints, [4, 4, 4]);
      assert.equal(counts.cells, 9);
      assert.equal(counts.toggles, CLASSES);
      assert.equal(counts.images, 27);
      assert.equal(counts.decoded, 27);
      assert.equal(counts.injected, false);

      // class toggle hides that class's series in both plots
      await page.click('#class-toggles input[data-class="1"]');
      const hidden = await page.evaluate(
        `Array.from(document.querySelectorAll('g.series[data-class="1"]')).map((g) => getComputedStyle(g).display)`,
      );
      assert.deepEqual(hidden, ['none', 'none']);

      // hover on a point shows its value in the tooltip
      await page.hover('#plot-mean g.series[data-series="class-2"] circle.point:nth-of-type(2)');
      const tip = await page.evaluate(`(() => {
        const t = document.getElementById('tooltip');
        return { hidden: t.hidden, text: t.textContent };
      })()`);
      const expected = sampleReport().curves!.mean[2 * LAYERS.length + 1] as number;
      assert.equal(tip.hidden, false);
      assert.match(tip.text ?? '', new RegExp(`bird · layer 1: ${expected.toFixed(4)}`));
      await context.close();
    });
  });
});
