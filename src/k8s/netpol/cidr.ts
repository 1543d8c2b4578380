// CIDR arithmetic for ipBlock.except: cidr minus the excepted blocks as a list of disjoint CIDRs. Calico puts an
// ipBlock with except into an ipset (hash:net with nomatch entries); our iptables has no set match, so the set is
// expanded into one rule per resulting CIDR (the rule count grows as the set's members do, as walking a set would not).
import { formatCidr, parseCidr, prefixMask } from "../../packet/addr.js";

interface Block {
  addr: number;
  len: number;
}

const contains = (b: Block, ip: number): boolean => ((ip & prefixMask(b.len)) >>> 0) === b.addr;

function subtract(b: Block, e: Block): Block[] {
  // e outside b, or e covers b.
  if (e.len <= b.len) return contains(e, b.addr) ? [] : [b];
  if (!contains(b, e.addr)) return [b];
  // Split b into its two halves until e is one of them: the halves not holding e remain.
  const out: Block[] = [];
  let cur = b;
  while (cur.len < e.len) {
    const len = cur.len + 1;
    const lo = { addr: cur.addr >>> 0, len };
    const hi = { addr: (cur.addr | (1 << (31 - cur.len))) >>> 0, len };
    if (contains(lo, e.addr)) {
      out.push(hi);
      cur = lo;
    } else {
      out.push(lo);
      cur = hi;
    }
  }
  return out;
}

/** `cidr` minus every `except` block, as CIDR strings sorted by address. */
export function cidrMinus(cidr: string, except: string[]): string[] {
  const c = parseCidr(cidr);
  let blocks: Block[] = [{ addr: (c.addr & prefixMask(c.len)) >>> 0, len: c.len }];
  for (const x of except) {
    const e = parseCidr(x);
    const eb = { addr: (e.addr & prefixMask(e.len)) >>> 0, len: e.len };
    blocks = blocks.flatMap((b) => subtract(b, eb));
  }
  return blocks.sort((a, b) => a.addr - b.addr || a.len - b.len).map((b) => formatCidr(b));
}
