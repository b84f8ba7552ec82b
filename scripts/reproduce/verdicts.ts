/**
 * Whether each of the thesis' claims held on our numbers. Every verdict is computed by a rule that is
 * stated beside it (the doc prints the rule with the word), from plain numbers, so each can be
 * tested on constructed inputs. No I/O, no RPC.
 */

export type VerdictWord = 'held' | 'held in part' | 'did not hold' | 'not measured';

export interface Verdict {
  word: VerdictWord;
  /** The rule that gives the word, in words, as printed in the doc. */
  rule: string;
}

/** One layer's accuracies after pruning 40% of its channels by each criterion (NaN: not run). */
export interface PruneRow {
  layer: number;
  top: number;
  bottom: number;
}

/** "held" when `hits` is every one of `of`, "held in part" when some, "did not hold" when none. */
function allSomeNone(hits: number, of: number, rule: string): Verdict {
  if (of === 0) return { word: 'not measured', rule };
  return { word: hits === of ? 'held' : hits > 0 ? 'held in part' : 'did not hold', rule };
}

const finite = (...xs: number[]): boolean => xs.every(Number.isFinite);

/** The layers the thesis found top-pruning worse than bottom-pruning in (table 5-1: layers 1–7). */
export const THESIS_TOP_WORSE_LAYERS = [1, 2, 3, 4, 5, 6, 7];

/**
 * Table 5-1, direction: removing the most similar 40% hurts more than removing the least similar
 * 40% (top < bottom) in layers 1–7.
 */
export function topWorseThanBottom(rows: PruneRow[]): Verdict {
  const measured = rows.filter((r) => THESIS_TOP_WORSE_LAYERS.includes(r.layer) && finite(r.top, r.bottom));
  return allSomeNone(
    measured.filter((r) => r.top < r.bottom).length,
    measured.length,
    'held when top < bottom in every measured layer of 1–7, in part when in some of them, not when in none',
  );
}

/** The layers where the thesis' top-pruned accuracy fell to 0.100–0.407 (table 5-1). */
export const THESIS_DROP_LAYERS = [1, 2, 3, 4, 5];
/** A top-pruned accuracy at or below this counts as a drop of the thesis' size (its worst was 0.407). */
export const DROP_LIMIT = 0.45;

/** Table 5-1, size: top-pruning drops the accuracy to the thesis' range (≤ DROP_LIMIT) in layers 1–5. */
export function dropOfThesisSize(rows: PruneRow[]): Verdict {
  const measured = rows.filter((r) => THESIS_DROP_LAYERS.includes(r.layer) && finite(r.top));
  return allSomeNone(
    measured.filter((r) => r.top <= DROP_LIMIT).length,
    measured.length,
    `held when the top-pruned accuracy is ≤ ${DROP_LIMIT} in every measured layer of 1–5, in part when in some of them, not when in none`,
  );
}

/**
 * Similarity curves (fig. 4-18, 5-1): low in conv layers 0–1, then rising. `layers` are the conv
 * layer indices of `values` (the mean over classes per layer).
 */
export function curveRises(layers: number[], values: number[]): Verdict {
  const rule = 'held when the highest value in conv layers 2 and up is above every value in layers 0–1';
  const at = (keep: (l: number) => boolean): number[] => values.filter((v, i) => keep(layers[i]!) && Number.isFinite(v));
  const early = at((l) => l <= 1);
  const later = at((l) => l >= 2);
  if (early.length === 0 || later.length === 0) return { word: 'not measured', rule };
  return { word: Math.max(...later) > Math.max(...early) ? 'held' : 'did not hold', rule };
}

/** Thesis 3.3.2: method 2 (vs the class's GBP image) gives higher values than method 1, layer by layer. */
export function method2Higher(method1: number[], method2: number[]): Verdict {
  const n = Math.min(method1.length, method2.length);
  const pairs = Array.from({ length: n }, (_x, i) => [method1[i]!, method2[i]!] as const).filter(([a, b]) => finite(a, b));
  return allSomeNone(
    pairs.filter(([a, b]) => b > a).length,
    pairs.length,
    'held when method 2 is above method 1 in every layer, in part when in some, not when in none',
  );
}

/** A class average counts as misread when the model gives its true class a probability below this. */
export const MISREAD_BELOW = 0.5;

/**
 * Fig. 3-12: plain mean images are misread by the model. `diagonal` is p(true class) of each class's
 * mean image.
 */
export function meansMisread(diagonal: number[]): Verdict {
  const rule = `held when at least half of the classes' mean images get p(true) < ${MISREAD_BELOW}, in part when fewer but some, not when none`;
  const ps = diagonal.filter(Number.isFinite);
  if (ps.length === 0) return { word: 'not measured', rule };
  const misread = ps.filter((p) => p < MISREAD_BELOW).length;
  return { word: misread * 2 >= ps.length ? 'held' : misread > 0 ? 'held in part' : 'did not hold', rule };
}

/** The mean diagonal at or above which class images count as read correctly (the thesis had 1.00). */
export const READ_AT_LEAST = 0.9;

/** Fig. 3-13: top-k (data-driven max-activation) averages are read as their class. */
export function topKRead(diagonal: number[]): Verdict {
  const rule = `held when the mean p(true) over classes is ≥ ${READ_AT_LEAST}`;
  const ps = diagonal.filter(Number.isFinite);
  if (ps.length === 0) return { word: 'not measured', rule };
  return { word: ps.reduce((s, p) => s + p, 0) / ps.length >= READ_AT_LEAST ? 'held' : 'did not hold', rule };
}

/** The last conv layer the thesis kept when it truncated VGG11 to 4 conv layers (layers 0–3). */
export const THESIS_TRUNCATION_LAYER = 3;

/**
 * Thesis 5.1: the network cut after conv layer 3 is more accurate than the full one. Here a linear
 * probe on that layer's frozen features stands in for the retrained truncated network.
 */
export function truncationBeatsFull(probes: Array<{ layer: number; testAccuracy: number }>, fullAccuracy: number): Verdict {
  const rule = `held when the probe on conv layer ${THESIS_TRUNCATION_LAYER} is more accurate than the full model on the same test images`;
  const p = probes.find((x) => x.layer === THESIS_TRUNCATION_LAYER);
  if (!p || !finite(p.testAccuracy, fullAccuracy)) return { word: 'not measured', rule };
  return { word: p.testAccuracy > fullAccuracy ? 'held' : 'did not hold', rule };
}
