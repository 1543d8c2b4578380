// A scenario: one of the seed's production failure modes, reproduced on the model, with the counters that show it
// and how each generation fares. Scenarios run on the lower layers directly (netfilter, net, k8s, ebpf) so each
// one shows exactly the mechanism it is about.
import type { GenNumber } from "../../gens/types.js";

export interface GenVerdict {
  gen: GenNumber;
  /** False when the scenario concerns other generations only (the verdict then says why). */
  applies: boolean;
  /** One line: how this generation fares. */
  verdict: string;
  /** Counters measured on this generation (empty when it does not apply). */
  counters: Record<string, number>;
}

export interface ScenarioResult {
  name: string;
  title: string;
  /** What happened, in order, as lines for humans. */
  happened: string[];
  /** Counters of the scenario as a whole (kernel-named: drop, early_drop, insert_failed, ...). */
  counters: Record<string, number>;
  gens: GenVerdict[];
}

export interface Scenario {
  name: string;
  title: string;
  /** Generations the failure mode concerns. */
  gens: GenNumber[];
  run(gens: GenNumber[]): Promise<ScenarioResult>;
}

export const ALL_GENS: GenNumber[] = [1, 2, 3, 4];

/** A verdict line for a generation the scenario does not concern. */
export function notApplicable(gen: GenNumber, why: string): GenVerdict {
  return { gen, applies: false, verdict: `not applicable: ${why}`, counters: {} };
}
