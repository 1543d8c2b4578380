// The rules each generation's network agent adds next to kube-proxy's, as iptables-restore payloads
// (`iptables-restore --noflush`): who gets masqueraded on the way out of the cluster.
//  - Gen 1, flanneld (pkg/trafficmngr/iptables MasqRules, ForwardRules): traffic between pods stays as is; pod
//    traffic to anywhere else but multicast is masqueraded with --random-fully; FORWARD accepts the pod network.
//  - Gen 2, calico-node (felix natOutgoing on the IP pool): pod traffic leaving the pool is masqueraded. Felix
//    matches ipsets (cali40masq-ipam-pools, cali40all-ipam-pools); with one pool they are that CIDR, written so; felix's rule-hash comments are replaced by plain names.
//  - Gen 3, aws-node (AWS-SNAT-CHAIN-0): traffic to outside the VPC is SNATed to the node's primary address
//    (`! -d VPC_CIDR`), unless it leaves by a vlan interface or goes to a local address.
// mergeSave() folds such payloads into kube-proxy's iptables-save text so a node has one ruleset.

const header = (tables: Record<string, string[]>, chains: Record<string, string[]>): string => {
  const out: string[] = [];
  for (const [t, rules] of Object.entries(tables)) {
    out.push(`*${t}`);
    for (const c of chains[t] ?? []) out.push(`:${c} - [0:0]`);
    out.push(...rules, "COMMIT");
  }
  return out.join("\n") + "\n";
};

export function flannelRules(clusterCIDR: string, podCIDR: string): string {
  const c = '-m comment --comment "flanneld masq"';
  const f = '-m comment --comment "flanneld forward"';
  return header(
    {
      nat: [
        `-A POSTROUTING ${c} -j FLANNEL-POSTRTG`,
        `-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 ${c} -j RETURN`,
        `-A FLANNEL-POSTRTG -s ${podCIDR} -d ${clusterCIDR} ${c} -j RETURN`,
        `-A FLANNEL-POSTRTG -s ${clusterCIDR} -d ${podCIDR} ${c} -j RETURN`,
        `-A FLANNEL-POSTRTG ! -s ${clusterCIDR} -d ${podCIDR} ${c} -j RETURN`,
        `-A FLANNEL-POSTRTG -s ${clusterCIDR} ! -d 224.0.0.0/4 ${c} -j MASQUERADE --random-fully`,
        `-A FLANNEL-POSTRTG ! -s ${clusterCIDR} -d ${clusterCIDR} ${c} -j MASQUERADE --random-fully`,
      ],
      filter: [`-A FORWARD ${f} -j FLANNEL-FWD`, `-A FLANNEL-FWD -s ${clusterCIDR} ${f} -j ACCEPT`, `-A FLANNEL-FWD -d ${clusterCIDR} ${f} -j ACCEPT`],
    },
    { nat: ["FLANNEL-POSTRTG"], filter: ["FLANNEL-FWD"] },
  );
}

export function calicoRules(pool: string): string {
  return header(
    {
      nat: [
        '-A POSTROUTING -m comment --comment "cali:postrouting" -j cali-POSTROUTING',
        '-A cali-POSTROUTING -m comment --comment "cali:nat-outgoing" -j cali-nat-outgoing',
        `-A cali-nat-outgoing -s ${pool} ! -d ${pool} -m comment --comment "cali:masq" -j MASQUERADE --random-fully`,
      ],
    },
    { nat: ["cali-POSTROUTING", "cali-nat-outgoing"] },
  );
}

export function awsSnatRules(vpcCIDR: string, nodeIP: string): string {
  return header(
    {
      nat: [
        '-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0',
        `-A AWS-SNAT-CHAIN-0 -d ${vpcCIDR} -m comment --comment "AWS SNAT CHAIN VPC CIDR EXCLUSION" -j RETURN`,
        `-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source ${nodeIP} --random-fully`,
      ],
    },
    { nat: ["AWS-SNAT-CHAIN-0"] },
  );
}

/** iptables-restore --noflush of `extra` on top of the iptables-save text `base`: new chains declared, rules appended. */
export function mergeSave(base: string, extra: string): string {
  const parse = (text: string) => {
    const tables = new Map<string, { chains: string[]; rules: string[] }>();
    let cur: { chains: string[]; rules: string[] } | null = null;
    for (const line of text.split("\n")) {
      if (line.startsWith("*")) {
        cur = { chains: [], rules: [] };
        tables.set(line.slice(1), cur);
      } else if (cur === null || line === "COMMIT" || line === "" || line.startsWith("#")) continue;
      else if (line.startsWith(":")) cur.chains.push(line);
      else cur.rules.push(line);
    }
    return tables;
  };
  const a = parse(base);
  for (const [t, x] of parse(extra)) {
    const y = a.get(t);
    if (y === undefined) a.set(t, x);
    else {
      const known = new Set(y.chains.map((c) => c.split(" ")[0]));
      y.chains.push(...x.chains.filter((c) => !known.has(c.split(" ")[0])));
      y.rules.push(...x.rules);
    }
  }
  const out: string[] = [];
  for (const [t, x] of a) out.push(`*${t}`, ...x.chains, ...x.rules, "COMMIT");
  return out.join("\n") + "\n";
}
