// Interface names → ifindexes, and the per-ifindex answer of each `-i`/`-o`/`--physdev-*` pattern, computed once
// when a rule set is compiled or an interface appears (kernel: ifname_compare against the device's name).

export class IfaceRegistry {
  /** names[ifindex]; index 0 is "no device" (empty name). */
  readonly names: string[] = [""];
  private readonly listeners: Array<(ifindex: number, name: string) => void> = [];

  /** The ifindex of `name`, registering it if new. */
  index(name: string): number {
    const i = this.names.indexOf(name);
    if (i >= 0) return i;
    this.names.push(name);
    const idx = this.names.length - 1;
    for (const l of this.listeners) l(idx, name);
    return idx;
  }

  lookup(name: string): number {
    return this.names.indexOf(name);
  }

  onAdd(l: (ifindex: number, name: string) => void): void {
    this.listeners.push(l);
  }
}

/** `eth0` matches exactly; `veth+` matches every name starting with `veth`; `+` matches any (even none). */
export function ifaceMatches(pattern: string, name: string): boolean {
  if (pattern.endsWith("+")) return name.startsWith(pattern.slice(0, -1));
  return name === pattern;
}
