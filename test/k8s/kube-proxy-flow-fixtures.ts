// kube-proxy's packet-flow fixtures (test/fixtures/k8s/kube-proxy/flows/*.yaml: upstream proxier_test.go's
// runPacketFlowTests as data), shared by the iptables, IPVS and nftables flow tests.
import { readdirSync, readFileSync } from "node:fs";
import { parse } from "yaml";
import { describe } from "vitest";
import type { IptablesProxierOptions } from "../../src/k8s/kube-proxy/iptables.js";
import { parseIpv4 } from "../../src/packet/addr.js";

/**
 * One packet: upstream's `output` is "" for a packet no Service rule touched, "DROP"/"REJECT" for a filter
 * verdict, or the endpoints a new connection can reach, sorted and joined by ", ".
 */
export interface Flow {
  name: string;
  proto?: string;
  src: string;
  dst: string;
  dport: number;
  output: string;
  masq?: boolean;
}
export interface FlowCase {
  name: string;
  manifests: string;
  flows: Flow[];
}
/** One upstream test: either one cluster (manifests + flows) or a shared Service with per-case slices. */
export interface FlowFile {
  source: string;
  proxier: IptablesProxierOptions;
  manifests?: string;
  flows?: Flow[];
  service?: string;
  cases?: FlowCase[];
}

/** The node's addresses in upstream's tests (testNodeIPs and the LoadBalancer source address). */
export const LOCAL_IPS = ["192.168.0.2", "192.168.1.2", "192.168.99.11"].map(parseIpv4);
export const PROTO: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

/**
 * A describe per fixture file (`prefix` + file name + upstream source) and per case, calling `run` with the
 * cluster's manifests and its flows.
 */
export function describeFlowFixtures(prefix: string, run: (file: string, spec: FlowFile, manifests: string, flows: Flow[]) => void): void {
  const dir = new URL("../fixtures/k8s/kube-proxy/flows/", import.meta.url);
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
    const spec = parse(readFileSync(new URL(file, dir), "utf8")) as FlowFile;
    describe(`${prefix}${file}: ${spec.source}`, () => {
      if (spec.manifests !== undefined) run(file, spec, spec.manifests, spec.flows ?? []);
      for (const c of spec.cases ?? []) describe(c.name, () => run(file, spec, `${spec.service ?? ""}\n---\n${c.manifests}`, c.flows));
    });
  }
}
