// The agent's service handling (cilium-agent's ServiceManager + the K8sWatcher's Service/EndpointSlice
// translation): every Service port becomes frontends, each with its backends, written into the lb4 maps.
//   ClusterIP            clusterIP:port                       (random selection, like bpf_lxc forces)
//   externalIPs          ip:port                              SVC_FLAG_EXTERNAL_IP | ROUTABLE
//   LoadBalancer         ingress ip:port                      SVC_FLAG_LOADBALANCER | ROUTABLE
//   NodePort / LB        every node InternalIP:nodePort       SVC_FLAG_NODEPORT | ROUTABLE
// Backends are the ready endpoints of the Service's EndpointSlices; serving+terminating ones only when none is
// ready (as kube-proxy and Cilium fall back); all of them with publishNotReadyAddresses. With the "maglev"
// algorithm, routable frontends get Maglev tables (Cilium provisions them for external frontends only unless
// bpf.lbExternalClusterIP). sessionAffinity: ClientIP sets SVC_FLAG_AFFINITY with the timeout.
// Backend ids and rev-NAT indexes are allocated once per backend / frontend and reused (the datapath's CT
// entries refer to them), freed when unused. syncService() rewrites one Service and touches only its entries:
// the control-plane cost tcbox compares with kube-proxy's full iptables-restore.
import type { Cluster, EndpointSlice, Service, ServicePort } from "../types.js";
import {
  Lb4Maps, SVC_FLAG2_MAGLEV, SVC_FLAG_AFFINITY, SVC_FLAG_EXTERNAL_IP, SVC_FLAG_LOADBALANCER, SVC_FLAG_NODEPORT,
  SVC_FLAG_ROUTABLE, type Lb4Frontend, type MapOps,
} from "./lb-maps.js";

export interface ServiceManagerOptions {
  /** --bpf-lb-algorithm: "random" (default) or "maglev". */
  algorithm?: "random" | "maglev";
}

interface BackendRef {
  id: number;
  refs: number;
}

/** A frontend as the manager wants it, with backend names (ip:port/PROTO) instead of ids. */
interface DesiredFrontend {
  address: string;
  port: number;
  proto: string;
  flags: number;
  flags2: number;
  affinityTimeout: number;
  backends: string[];
}

const feKey = (f: { address: string; port: number; proto: string }) => `${f.address}:${f.port}/${f.proto}`;

export class ServiceManager {
  private readonly backendIds = new Map<string, BackendRef>();
  private readonly revNat = new Map<string, number>();
  /** Per Service ("ns/name"): its frontends as written (key -> backend names). */
  private readonly written = new Map<string, Map<string, DesiredFrontend>>();
  private nextBackendId = 1;
  private nextRevNat = 1;
  private readonly freeRevNat: number[] = [];
  private readonly freeBackendIds: number[] = [];

  constructor(
    readonly maps: Lb4Maps,
    readonly opts: ServiceManagerOptions = {},
  ) {}

  /** Frontends and backends of every Service; Services gone from the cluster are removed. Returns map ops. */
  sync(cluster: Cluster): MapOps {
    const before = { ...this.maps.ops };
    const seen = new Set<string>();
    for (const svc of cluster.services) {
      const id = `${svc.metadata.namespace}/${svc.metadata.name}`;
      seen.add(id);
      this.apply(id, this.desired(cluster, svc));
    }
    for (const id of [...this.written.keys()]) if (!seen.has(id)) this.apply(id, []);
    return diffOps(before, this.maps.ops);
  }

  /** Re-sync one Service (after it or its EndpointSlices changed): only its entries are written. */
  syncService(cluster: Cluster, namespace: string, name: string): MapOps {
    const before = { ...this.maps.ops };
    const svc = cluster.services.find((s) => s.metadata.namespace === namespace && s.metadata.name === name);
    this.apply(`${namespace}/${name}`, svc ? this.desired(cluster, svc) : []);
    return diffOps(before, this.maps.ops);
  }

  /** The rev-NAT index of a frontend ("10.96.0.10:80/TCP"), if written. */
  revNatIndex(frontend: string): number | undefined {
    return this.revNat.get(frontend);
  }
  /** The backend id of "ip:port/PROTO", if in use. */
  backendId(backend: string): number | undefined {
    return this.backendIds.get(backend)?.id;
  }

  /** What the Service should look like in the maps. */
  desired(cluster: Cluster, svc: Service): DesiredFrontend[] {
    if (svc.type === "ExternalName") return [];
    const slices = cluster.endpointSlices.filter((s) => s.metadata.namespace === svc.metadata.namespace && s.serviceName === svc.metadata.name && s.addressType === "IPv4");
    const out: DesiredFrontend[] = [];
    const maglev = this.opts.algorithm === "maglev" ? SVC_FLAG2_MAGLEV : 0;
    const affinity = svc.sessionAffinity === "ClientIP" ? SVC_FLAG_AFFINITY : 0;
    const timeout = affinity ? svc.sessionAffinityTimeoutSeconds : 0;
    for (const sp of svc.ports) {
      const backends = backendsFor(slices, sp, svc.publishNotReadyAddresses);
      const add = (address: string, port: number, flags: number, flags2: number) =>
        out.push({ address, port, proto: sp.protocol, flags: flags | affinity, flags2, affinityTimeout: timeout, backends });
      if (svc.clusterIP && svc.clusterIP !== "None") add(svc.clusterIP, sp.port, 0, 0);
      for (const ip of svc.externalIPs) add(ip, sp.port, SVC_FLAG_EXTERNAL_IP | SVC_FLAG_ROUTABLE, maglev);
      if (svc.type === "LoadBalancer") for (const ip of svc.loadBalancerIngress) add(ip, sp.port, SVC_FLAG_LOADBALANCER | SVC_FLAG_ROUTABLE, maglev);
      if ((svc.type === "NodePort" || svc.type === "LoadBalancer") && sp.nodePort !== 0) {
        for (const node of cluster.nodes) for (const ip of node.internalIPs) add(ip, sp.nodePort, SVC_FLAG_NODEPORT | SVC_FLAG_ROUTABLE, maglev);
      }
    }
    return out;
  }

  private apply(id: string, want: DesiredFrontend[]): void {
    const old = this.written.get(id) ?? new Map<string, DesiredFrontend>();
    const next = new Map<string, DesiredFrontend>();
    for (const f of want) next.set(feKey(f), f);
    // Backends first (new ones exist before any slot points at them), then frontends, then releases.
    for (const f of next.values()) for (const b of f.backends) this.acquire(b);
    for (const [k, f] of next) {
      const o = old.get(k);
      if (o && sameFrontend(o, f)) continue;
      let rev = this.revNat.get(k);
      if (rev === undefined) {
        rev = this.freeRevNat.pop() ?? this.nextRevNat++;
        this.revNat.set(k, rev);
      }
      const fe: Lb4Frontend = {
        address: f.address, port: f.port, proto: f.proto, revNatIndex: rev, flags: f.flags, flags2: f.flags2,
        affinityTimeout: f.affinityTimeout, backendIds: f.backends.map((b) => this.backendIds.get(b)!.id),
      };
      const names = new Map(f.backends.map((b) => [this.backendIds.get(b)!.id, b]));
      this.maps.upsertFrontend(fe, (bid) => names.get(bid) ?? String(bid));
    }
    for (const [k, o] of old) {
      if (next.has(k)) continue;
      this.maps.deleteFrontend(o.address, o.port, o.proto);
      this.freeRevNat.push(this.revNat.get(k)!);
      this.revNat.delete(k);
    }
    for (const o of old.values()) for (const b of o.backends) this.release(b);
    if (next.size > 0) this.written.set(id, next);
    else this.written.delete(id);
  }

  private acquire(name: string): void {
    const ref = this.backendIds.get(name);
    if (ref) {
      ref.refs++;
      return;
    }
    const id = this.freeBackendIds.pop() ?? this.nextBackendId++;
    this.backendIds.set(name, { id, refs: 1 });
    const m = /^(.*):(\d+)\/(\w+)$/.exec(name)!;
    this.maps.upsertBackend({ id, address: m[1]!, port: Number(m[2]), proto: m[3]! });
  }

  private release(name: string): void {
    const ref = this.backendIds.get(name)!;
    if (--ref.refs > 0) return;
    this.backendIds.delete(name);
    this.maps.deleteBackend(ref.id);
    this.freeBackendIds.push(ref.id);
  }
}

/** Backend names for one Service port: ready endpoints, else serving+terminating ones. Sorted, unique. */
export function backendsFor(slices: EndpointSlice[], sp: ServicePort, publishNotReady: boolean): string[] {
  const ready = new Set<string>();
  const terminating = new Set<string>();
  for (const s of slices) {
    const port = s.ports.find((p) => p.name === sp.name && p.protocol === sp.protocol);
    if (!port) continue;
    for (const ep of s.endpoints) {
      const c = ep.conditions;
      for (const a of ep.addresses) {
        const name = `${a}:${port.port}/${sp.protocol}`;
        if (c.ready || publishNotReady) ready.add(name);
        else if (c.serving && c.terminating) terminating.add(name);
      }
    }
  }
  return [...(ready.size > 0 ? ready : terminating)].sort();
}

function sameFrontend(a: DesiredFrontend, b: DesiredFrontend): boolean {
  return a.flags === b.flags && a.flags2 === b.flags2 && a.affinityTimeout === b.affinityTimeout && a.backends.length === b.backends.length && a.backends.every((x, i) => x === b.backends[i]);
}

function diffOps(before: MapOps, after: MapOps): MapOps {
  return { updates: after.updates - before.updates, deletes: after.deletes - before.deletes };
}
