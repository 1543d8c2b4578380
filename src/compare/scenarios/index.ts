// The scenario registry: `tcbox scenario list` prints these in this order.
import { conntrackExhaustion } from "./conntrack-exhaustion.js";
import { eniExhaustion } from "./eni-exhaustion.js";
import { hostNetworkPort } from "./hostnetwork-port.js";
import { udpDnsRace } from "./udp-dns-race.js";
import { staleRoute } from "./stale-route.js";
import { hotSwap } from "./hot-swap.js";
import { ndotsAmplification } from "./ndots.js";
import { endpointChurn } from "./endpoint-churn.js";
import type { Scenario } from "./types.js";

export * from "./types.js";

export const SCENARIOS: Scenario[] = [conntrackExhaustion, udpDnsRace, ndotsAmplification, staleRoute, eniExhaustion, hostNetworkPort, endpointChurn, hotSwap];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
