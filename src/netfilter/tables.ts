// Tables, built-in chains and the netfilter hooks they sit on, with the kernel's priorities
// (include/uapi/linux/netfilter_ipv4.h: NF_IP_PRI_RAW -300, CONNTRACK -200, MANGLE -150, NAT_DST -100,
// FILTER 0, SECURITY 50, NAT_SRC 100). Lower priority runs first on a hook.

export type TableName = "raw" | "mangle" | "nat" | "filter" | "security";
export type HookName = "PREROUTING" | "INPUT" | "FORWARD" | "OUTPUT" | "POSTROUTING";

/** Hook numbers as the kernel numbers them (enum nf_inet_hooks). */
export const Hook = { PREROUTING: 0, INPUT: 1, FORWARD: 2, OUTPUT: 3, POSTROUTING: 4 } as const;
export const HOOK_NAMES: readonly HookName[] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

export const Priority = {
  RAW: -300,
  CONNTRACK: -200,
  MANGLE: -150,
  NAT_DST: -100,
  FILTER: 0,
  SECURITY: 50,
  NAT_SRC: 100,
} as const;

/** Built-in chains per table, in the order iptables-save prints them (hook order). */
export const BUILTIN_CHAINS: Record<TableName, readonly HookName[]> = {
  raw: ["PREROUTING", "OUTPUT"],
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  security: ["INPUT", "FORWARD", "OUTPUT"],
};

export const TABLE_NAMES: readonly TableName[] = ["raw", "mangle", "nat", "filter", "security"];

export function isTableName(s: string): s is TableName {
  return (TABLE_NAMES as readonly string[]).includes(s);
}

export function isBuiltinChain(table: TableName, chain: string): chain is HookName {
  return (BUILTIN_CHAINS[table] as readonly string[]).includes(chain);
}

/** Priority of a table on a hook: nat is DNAT before filter (PREROUTING, OUTPUT) and SNAT after (INPUT, POSTROUTING). */
export function tablePriority(table: TableName, hook: HookName): number {
  switch (table) {
    case "raw":
      return Priority.RAW;
    case "mangle":
      return Priority.MANGLE;
    case "filter":
      return Priority.FILTER;
    case "security":
      return Priority.SECURITY;
    case "nat":
      return hook === "PREROUTING" || hook === "OUTPUT" ? Priority.NAT_DST : Priority.NAT_SRC;
  }
}

/** The tables on a hook in the order the kernel runs them (ascending priority). Conntrack sits at -200 between raw and mangle. */
export function tablesOnHook(hook: HookName): TableName[] {
  return TABLE_NAMES.filter((t) => isBuiltinChain(t, hook)).sort((a, b) => tablePriority(a, hook) - tablePriority(b, hook));
}
