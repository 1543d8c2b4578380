// The registry of match modules by name (what `-m NAME` can load).
import type { MatchModule } from "./match.js";
import { icmpModule, multiportModule, sctpModule, tcpModule, udpModule } from "./match-l4.js";
import { commentModule, nfacctModule, physdevModule, recentModule, statisticModule } from "./match-misc.js";
import { setModule } from "./match-set.js";
import { addrtypeModule, conntrackModule, markModule, stateModule } from "./match-state.js";

export const MATCH_MODULES: Record<string, MatchModule> = Object.fromEntries(
  [
    tcpModule, udpModule, sctpModule, icmpModule, multiportModule, commentModule, markModule, conntrackModule,
    stateModule, addrtypeModule, statisticModule, recentModule, physdevModule, nfacctModule,
    setModule,
  ].map((m) => [m.name, m as unknown as MatchModule]),
);
