// TCP window tracking (kernel nf_conntrack_proto_tcp.c tcp_in_window, tcp_options, tcp_sack; Guido van Rooij's
// "Real Stateful TCP Packet Filtering"). Per direction: td_end (highest seq+len sent), td_maxend (highest
// ack+window the other side allowed), td_maxwin (largest window), td_scale, flags. A segment is in window when
//   I.   seq <= sender.td_maxend                        II.  seq+len >= sender.td_end - receiver.td_maxwin
//   III. sack <= receiver.td_end                        IV.  sack >= receiver.td_end - MAXACKWINDOW(sender)
// Out-of-window segments are INVALID unless the side is BE_LIBERAL (mid-stream pick-ups). No NAT seq adjustment
// (no helpers here), nf_conntrack_tcp_be_liberal=0 as the kernel's default.
import type { ConntrackTable } from "./conntrack-table.js";
import type { TupleScratch } from "./tuple.js";

export const IP_CT_TCP_FLAG_WINDOW_SCALE = 0x01;
export const IP_CT_TCP_FLAG_SACK_PERM = 0x02;
export const IP_CT_TCP_FLAG_CLOSE_INIT = 0x04;
export const IP_CT_TCP_FLAG_BE_LIBERAL = 0x08;
export const IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED = 0x10;
export const IP_CT_TCP_FLAG_MAXACK_SET = 0x20;

const TCPOPT_EOL = 0;
const TCPOPT_NOP = 1;
const TCPOPT_WINDOW = 3;
const TCPOPT_SACK_PERM = 4;
const TCPOPT_SACK = 5;
const TCP_MAX_WSCALE = 14;
const MAXACKWINCONST = 66000;

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

// tcpInWindow (per packet) writes the flag bits and MAXACKWINCONST as literals with their names in comments (V8
// loads a module binding on every use); checked once here.
if (IP_CT_TCP_FLAG_WINDOW_SCALE !== 0x01 || IP_CT_TCP_FLAG_SACK_PERM !== 0x02 || IP_CT_TCP_FLAG_BE_LIBERAL !== 0x08 ||
    IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED !== 0x10 || IP_CT_TCP_FLAG_MAXACK_SET !== 0x20 || MAXACKWINCONST !== 66000 ||
    FIN !== 0x01 || SYN !== 0x02 || RST !== 0x04 || ACK !== 0x10) {
  throw new Error("netfilter/conntrack-tcp-window.ts: literal flags out of step with their definitions");
}

/** seq1 before seq2 in 32-bit sequence space (kernel before()). */
export function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
export function after(a: number, b: number): boolean {
  return ((b - a) | 0) < 0;
}

/** kernel segment_seq_plus_len */
export function segEnd(t: TupleScratch): number {
  const f = t.tcpFlags;
  return (t.seq + (t.l4len - t.doff) + ((f >>> 1) & 1 /* SYN */) + (f & 1 /* FIN */)) >>> 0;
}

/** kernel tcp_options: window scale and SACK-permitted of a SYN, into side `s` (flags keep only BE_LIBERAL). */
export function tcpOptions(ct: ConntrackTable, s: number, t: TupleScratch): void {
  let len = t.doff - 20;
  if (len <= 0) return;
  ct.tdScale[s] = 0;
  ct.tdFlags[s] &= IP_CT_TCP_FLAG_BE_LIBERAL;
  const b = t.buf;
  let p = t.l4off + 20;
  while (len > 0) {
    const op = b[p++]!;
    if (op === TCPOPT_EOL) return;
    if (op === TCPOPT_NOP) {
      len--;
      continue;
    }
    if (len < 2) return;
    const size = b[p++]!;
    if (size < 2 || size > len) return;
    if (op === TCPOPT_SACK_PERM && size === 2) ct.tdFlags[s] |= IP_CT_TCP_FLAG_SACK_PERM;
    else if (op === TCPOPT_WINDOW && size === 3) {
      ct.tdScale[s] = Math.min(b[p]!, TCP_MAX_WSCALE);
      ct.tdFlags[s] |= IP_CT_TCP_FLAG_WINDOW_SCALE;
    }
    p += size - 2;
    len -= size;
  }
}

/** Window scale and SACK-permitted options of a segment as last_flags/last_wscale (the IGNORE path's annotation). */
export function tcpOptionsLast(ct: ConntrackTable, i: number, t: TupleScratch): number {
  let len = t.doff - 20;
  let flags = 0;
  ct.lastWscale[i] = 0;
  const b = t.buf;
  let p = t.l4off + 20;
  while (len > 0) {
    const op = b[p++]!;
    if (op === TCPOPT_EOL) break;
    if (op === TCPOPT_NOP) {
      len--;
      continue;
    }
    if (len < 2) break;
    const size = b[p++]!;
    if (size < 2 || size > len) break;
    if (op === TCPOPT_SACK_PERM && size === 2) flags |= IP_CT_TCP_FLAG_SACK_PERM;
    else if (op === TCPOPT_WINDOW && size === 3) {
      ct.lastWscale[i] = Math.min(b[p]!, TCP_MAX_WSCALE);
      flags |= IP_CT_TCP_FLAG_WINDOW_SCALE;
    }
    p += size - 2;
    len -= size;
  }
  return flags;
}

/** kernel tcp_sack: the highest right edge of the SACK blocks, or `sack` when there are none. */
function tcpSack(t: TupleScratch, sack: number): number {
  let len = t.doff - 20;
  if (len <= 0) return sack;
  const b = t.buf;
  let p = t.l4off + 20;
  // Fast path: timestamps only (NOP, NOP, TIMESTAMP, 10).
  if (len === 12 && b[p] === 1 && b[p + 1] === 1 && b[p + 2] === 8 && b[p + 3] === 10) return sack;
  while (len > 0) {
    const op = b[p++]!;
    if (op === TCPOPT_EOL) return sack;
    if (op === TCPOPT_NOP) {
      len--;
      continue;
    }
    if (len < 2) return sack;
    const size = b[p++]!;
    if (size < 2 || size > len) return sack;
    if (op === TCPOPT_SACK && size >= 10 && (size - 2) % 8 === 0) {
      for (let k = 0; k < size - 2; k += 8) {
        const edge = ((b[p + k + 4]! << 24) | (b[p + k + 5]! << 16) | (b[p + k + 6]! << 8) | b[p + k + 7]!) >>> 0;
        if (after(edge, sack)) sack = edge;
      }
      return sack;
    }
    p += size - 2;
    len -= size;
  }
  return sack;
}

/** Initialise side `s` from a SYN (tcp_new, or a re-opening SYN). */
export function initFromSyn(ct: ConntrackTable, s: number, t: TupleScratch, end: number): void {
  ct.tdEnd[s] = end;
  ct.tdMaxend[s] = end;
  ct.tdMaxwin[s] = t.win === 0 ? 1 : t.win;
  tcpOptions(ct, s, t);
}

/**
 * kernel tcp_in_window for entry `i`, direction `dir`, tcp_bit_set `index`, TCP state `state`. Updates both sides
 * and the retransmission counters; returns whether the segment is acceptable.
 */
export function tcpInWindow(ct: ConntrackTable, i: number, dir: number, index: number, state: number, t: TupleScratch): boolean {
  // The per-direction arrays, read once (nothing here reallocates them).
  const tdEnd = ct.tdEnd, tdMaxend = ct.tdMaxend, tdMaxwin = ct.tdMaxwin, tdMaxack = ct.tdMaxack, tdFlags = ct.tdFlags, tdScale = ct.tdScale;
  const s = i * 2 + dir;
  const r = i * 2 + (dir ^ 1);
  const flags = t.tcpFlags;
  let seq = t.seq;
  let ack = t.ack;
  let sack = ack;
  let win = t.win;
  let end = segEnd(t);
  if (tdFlags[r]! & 0x02 /* IP_CT_TCP_FLAG_SACK_PERM */) sack = tcpSack(t, sack);

  if (tdMaxwin[s] === 0) {
    if (flags & 0x02 /* SYN */) {
      // SYN/ACK answering a SYN, or a SYN from the reply side (simultaneous open).
      initFromSyn(ct, s, t, end);
      if (!(tdFlags[s]! & 0x01 /* IP_CT_TCP_FLAG_WINDOW_SCALE */ && tdFlags[r]! & 0x01 /* IP_CT_TCP_FLAG_WINDOW_SCALE */)) {
        tdScale[s] = 0;
        tdScale[r] = 0;
      }
      if (!(flags & 0x10 /* ACK */)) return true;
    } else {
      // Mid-connection: its history is lost, use the segment.
      tdEnd[s] = end;
      const swin = (win << tdScale[s]!) >>> 0;
      tdMaxwin[s] = swin === 0 ? 1 : swin;
      tdMaxend[s] = (end + tdMaxwin[s]!) >>> 0;
      if (tdMaxwin[r] === 0) {
        tdEnd[r] = sack;
        tdMaxend[r] = sack;
      } else if (sack === ((tdEnd[r]! + 1) >>> 0)) tdEnd[r] = (tdEnd[r]! + 1) >>> 0; // keepalive reply
    }
  } else if (((state === 1 && dir === 0) || (state === 2 && dir === 1)) && after(end, tdEnd[s]!)) {
    // SYN_SENT (original) / SYN_RECV (reply): a reinitialised connection with higher sequence numbers (RFC 793).
    initFromSyn(ct, s, t, end);
  }

  if (!(flags & 0x10 /* ACK */)) ack = sack = tdEnd[r]!;
  else if ((flags & (0x10 /* ACK */ | 0x04 /* RST */)) === (0x10 /* ACK */ | 0x04 /* RST */) && ack === 0) ack = sack = tdEnd[r]!; // broken stacks
  if (flags & 0x04 /* RST */ && seq === 0 && state === 1) seq = end = tdEnd[s]!; // RST answering a SYN

  const rMaxwin = tdMaxwin[r]!;
  const inRecvWin = rMaxwin === 0 || after(end, (tdEnd[s]! - rMaxwin - 1) >>> 0);
  const maxAckWin = tdMaxwin[s]! > 66000 /* MAXACKWINCONST */ ? tdMaxwin[s]! : 66000 /* MAXACKWINCONST */;
  const rEnd = tdEnd[r]!;
  if (before(seq, (tdMaxend[s]! + 1) >>> 0) && inRecvWin && before(sack, (rEnd + 1) >>> 0) && after(sack, (rEnd - maxAckWin - 1) >>> 0)) {
    if (!(flags & 0x02 /* SYN */)) win = (win << tdScale[s]!) >>> 0;
    const swin = (win + (sack - ack)) >>> 0;
    if (tdMaxwin[s]! < swin) tdMaxwin[s] = swin;
    if (after(end, tdEnd[s]!)) {
      tdEnd[s] = end;
      tdFlags[s] |= 0x10 /* IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED */;
    }
    if (flags & 0x10 /* ACK */) {
      if (!(tdFlags[s]! & 0x20 /* IP_CT_TCP_FLAG_MAXACK_SET */)) {
        tdMaxack[s] = ack;
        tdFlags[s] |= 0x20 /* IP_CT_TCP_FLAG_MAXACK_SET */;
      } else if (after(ack, tdMaxack[s]!)) tdMaxack[s] = ack;
    }
    if (tdMaxwin[r] !== 0 && after(end, tdMaxend[s]!)) tdMaxwin[r] = (tdMaxwin[r]! + (end - tdMaxend[s]!)) >>> 0;
    if (after((sack + win) >>> 0, (tdMaxend[r]! - 1) >>> 0)) {
      tdMaxend[r] = (sack + win) >>> 0;
      if (win === 0) tdMaxend[r] = (tdMaxend[r]! + 1) >>> 0;
    }
    if (ack === tdEnd[r]) tdFlags[r] &= ~0x10 /* IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED */;
    if (index === 3 /* TCP_ACK_SET */) {
      if (ct.lastDir[i] === dir && ct.lastSeq[i] === seq && ct.lastAck[i] === ack && ct.lastEnd[i] === end && ct.lastWin[i] === t.win) {
        if (ct.retrans[i]! < 255) ct.retrans[i]!++;
      } else {
        ct.lastDir[i] = dir;
        ct.lastSeq[i] = seq;
        ct.lastAck[i] = ack;
        ct.lastEnd[i] = end;
        ct.lastWin[i] = t.win;
        ct.retrans[i] = 0;
      }
    }
    return true;
  }
  if (tdFlags[s]! & 0x08 /* IP_CT_TCP_FLAG_BE_LIBERAL */) return true;
  // Only the sequence check failed and the data might still be acked: remember it so a later ACK is not "over
  // the upper bound" (the segment itself stays INVALID).
  if (!before(seq, (tdMaxend[s]! + 1) >>> 0)) {
    const overshot = (end - tdMaxend[s]! + 1) >>> 0;
    if (inRecvWin && after(sack, (rEnd - maxAckWin - 1) >>> 0) && overshot <= tdMaxwin[r]! && before(sack, (rEnd + 1) >>> 0)) {
      tdEnd[s] = end;
      tdFlags[s] |= 0x10 /* IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED */;
    }
  }
  return false;
}
