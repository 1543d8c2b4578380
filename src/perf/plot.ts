// `tcbox bench --plot`: packets per second against Services (log-log), one colour per generation and kube-proxy mode, new connections
// and established traffic as two panels. vega-lite compiles the spec, vega renders SVG headless.
import * as vega from "vega";
import * as vl from "vega-lite";
import type { BenchResult } from "./run.js";

export async function plotSvg(results: BenchResult[]): Promise<string> {
  // Gen 1-3 rows of one kube-proxy mode are one measurement: one line labelled with every generation it serves.
  const gensOf = new Map<string, number[]>();
  for (const r of results) {
    const g = gensOf.get(r.mode) ?? [];
    if (!g.includes(r.gen)) g.push(r.gen);
    gensOf.set(r.mode, g);
  }
  const span = (g: number[]) => (g.length > 1 && g[g.length - 1]! - g[0]! === g.length - 1 ? `${g[0]}–${g[g.length - 1]}` : g.join(", "));
  const seen = new Set<string>();
  const values = results.flatMap((r) => {
    const label = r.mode === "ebpf" ? `Gen ${r.gen} (eBPF lb4)` : `Gen ${span(gensOf.get(r.mode)!)} (kube-proxy ${r.mode === "ipvs" ? "IPVS" : r.mode})`;
    const key = `${label}/${r.services}`;
    if (seen.has(key)) return [];
    seen.add(key);
    return [
      { generation: label, services: r.services, traffic: "new connections (first packet)", pps: r.new_pps },
      { generation: label, services: r.services, traffic: "established connections", pps: r.established_pps },
    ];
  });
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: { text: "Service hop throughput against cluster size (one core, median CPU time per packet)", fontSize: 14 },
    data: { values },
    facet: { column: { field: "traffic", type: "nominal", title: null } },
    spec: {
      width: 320,
      height: 240,
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "services", type: "quantitative", scale: { type: "log" }, title: "Services (log scale)" },
        y: { field: "pps", type: "quantitative", scale: { type: "log" }, title: "packets per second (log scale)" },
        color: { field: "generation", type: "nominal", title: "generation" },
        strokeDash: { field: "generation", type: "nominal", legend: null },
      },
    },
  } as unknown as vl.TopLevelSpec;
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
