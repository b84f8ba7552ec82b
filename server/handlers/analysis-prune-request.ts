/** Prune's criteria and fractions on the wire ↔ the pruning service's names. */
import { PruneCriterion } from '../../api/generated/introspect/v1/analysis';
import type { PruneCriterionName } from '../../services/analysis/pruning-criteria';
import { invalidArgument } from '../../services/errors';

const CRITERIA: Record<number, PruneCriterionName> = {
  [PruneCriterion.PRUNE_CRITERION_SIMILARITY_TOP]: 'similarity_top',
  [PruneCriterion.PRUNE_CRITERION_SIMILARITY_BOTTOM]: 'similarity_bottom',
  [PruneCriterion.PRUNE_CRITERION_RANDOM]: 'random',
  [PruneCriterion.PRUNE_CRITERION_L1]: 'l1',
  [PruneCriterion.PRUNE_CRITERION_APOZ]: 'apoz',
};
export const CRITERIA_TO_WIRE = Object.fromEntries(Object.entries(CRITERIA).map(([k, v]) => [v, Number(k) as PruneCriterion])) as Record<
  PruneCriterionName,
  PruneCriterion
>;

const MAX_FRACTIONS = 100;

/** Criteria (default all five, in this order), no repeats. */
export function criteriaFromWire(criteria: PruneCriterion[]): PruneCriterionName[] {
  if (criteria.length === 0) return Object.values(CRITERIA);
  const seen = new Set<PruneCriterionName>();
  return criteria.map((c, i) => {
    const name = CRITERIA[c];
    if (name === undefined) throw invalidArgument(`criteria[${i}]: unknown prune criterion ${String(c)}`);
    if (seen.has(name)) throw invalidArgument(`criteria[${i}] = ${name} is repeated`);
    seen.add(name);
    return name;
  });
}

/** Fractions, each in (0, 1); undefined (the service's default) when none are given. */
export function fractionsFromWire(fractions: number[]): number[] | undefined {
  if (fractions.length > MAX_FRACTIONS) throw invalidArgument(`fractions: at most ${MAX_FRACTIONS} values, got ${fractions.length}`);
  fractions.forEach((f, i) => {
    if (!(f > 0 && f < 1)) throw invalidArgument(`fractions[${i}] = ${f} must be in (0, 1)`);
  });
  return fractions.length > 0 ? fractions : undefined;
}
