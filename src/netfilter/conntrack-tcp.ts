// The TCP tracker (kernel net/netfilter/nf_conntrack_proto_tcp.c, Linux 6.x): the tcp_conntracks state table,
// default timeouts, tcp_error flag checks, tcp_new (loose pick-up), the IGNORE/reopen/RST special cases and the
// timeout choice (RETRANS, CLOSE on RST, UNACK while data is unacknowledged, cap for unreplied pick-ups).
//
// Window tracking (tcp_in_window) is in conntrack-tcp-window.ts: out-of-window segments are INVALID and change
// nothing, as in the kernel with nf_conntrack_tcp_be_liberal=0 (the default).
import type { ConntrackTable } from "./conntrack-table.js";
import {
  IPS_ASSURED, IPS_SEEN_REPLY, TCP_LAST_DIR, TCP_LAST_END, TCP_LAST_FLAGS, TCP_LAST_INDEX, TCP_LAST_SEQ, TCP_LAST_WIN, TCP_LAST_WSCALE,
  TCP_RETRANS, TCP_SIDE, TCP_STRIDE, TD_END, TD_FLAGS, TD_MAXACK, TD_MAXEND, TD_MAXWIN, TD_SCALE,
} from "./conntrack-table.js";
import type { TupleScratch } from "./tuple.js";
import {
  after,
  before,
  IP_CT_TCP_FLAG_BE_LIBERAL,
  IP_CT_TCP_FLAG_CLOSE_INIT,
  IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED,
  IP_CT_TCP_FLAG_MAXACK_SET,
  IP_CT_TCP_FLAG_SACK_PERM,
  initFromSyn,
  segEnd,
  tcpInWindow,
  tcpOptionsLast,
} from "./conntrack-tcp-window.js";

export const TCP_CONNTRACK_NONE = 0;
export const TCP_CONNTRACK_SYN_SENT = 1;
export const TCP_CONNTRACK_SYN_RECV = 2;
export const TCP_CONNTRACK_ESTABLISHED = 3;
export const TCP_CONNTRACK_FIN_WAIT = 4;
export const TCP_CONNTRACK_CLOSE_WAIT = 5;
export const TCP_CONNTRACK_LAST_ACK = 6;
export const TCP_CONNTRACK_TIME_WAIT = 7;
export const TCP_CONNTRACK_CLOSE = 8;
export const TCP_CONNTRACK_SYN_SENT2 = 9;
export const TCP_CONNTRACK_MAX = 10; // sIV: invalid
export const TCP_CONNTRACK_IGNORE = 11; // sIG
export const TCP_CONNTRACK_RETRANS = 12; // timeout slots only
export const TCP_CONNTRACK_UNACK = 13;

export const TCP_STATE_NAMES = [
  "NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
];

/** Default timeouts in seconds (sysctl net.netfilter.nf_conntrack_tcp_timeout_*; verified on Linux 6.18). */
export const TCP_TIMEOUTS = new Float64Array([
  0, // NONE
  120, // SYN_SENT
  60, // SYN_RECV
  432000, // ESTABLISHED (5 days)
  120, // FIN_WAIT
  60, // CLOSE_WAIT
  30, // LAST_ACK
  120, // TIME_WAIT
  10, // CLOSE
  120, // SYN_SENT2
  0, 0,
  300, // RETRANS (nf_conntrack_tcp_timeout_max_retrans)
  300, // UNACK (nf_conntrack_tcp_timeout_unacknowledged)
]);
/** nf_conntrack_tcp_max_retrans */
export const TCP_MAX_RETRANS = 3;

// enum tcp_bit_set
export const TCP_SYN_SET = 0;
export const TCP_SYNACK_SET = 1;
export const TCP_FIN_SET = 2;
export const TCP_ACK_SET = 3;
export const TCP_RST_SET = 4;
export const TCP_NONE_SET = 5;

// TCP header flag bits
export const TCPHDR_FIN = 0x01;
export const TCPHDR_SYN = 0x02;
export const TCPHDR_RST = 0x04;
export const TCPHDR_PSH = 0x08;
export const TCPHDR_ACK = 0x10;
export const TCPHDR_URG = 0x20;
export const TCPHDR_ECE = 0x40;
export const TCPHDR_CWR = 0x80;

// ip_ct_tcp.last_flags
const IP_CT_EXP_CHALLENGE_ACK = 0x40;
const IP_CT_TCP_SIMULTANEOUS_OPEN = 0x04;

const sNO = TCP_CONNTRACK_NONE, sSS = TCP_CONNTRACK_SYN_SENT, sSR = TCP_CONNTRACK_SYN_RECV;
const sES = TCP_CONNTRACK_ESTABLISHED, sFW = TCP_CONNTRACK_FIN_WAIT, sCW = TCP_CONNTRACK_CLOSE_WAIT;
const sLA = TCP_CONNTRACK_LAST_ACK, sTW = TCP_CONNTRACK_TIME_WAIT, sCL = TCP_CONNTRACK_CLOSE;
const sS2 = TCP_CONNTRACK_SYN_SENT2, sIV = TCP_CONNTRACK_MAX, sIG = TCP_CONNTRACK_IGNORE;


/** tcp_conntracks[dir][index][old state], flattened: (dir * 6 + index) * 10 + state. */
export const TCP_CONNTRACKS = new Uint8Array([
  // ORIGINAL      sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
  /* syn    */ sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2,
  /* synack */ sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR,
  /* fin    */ sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV,
  /* ack    */ sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV,
  /* rst    */ sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL,
  /* none   */ sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV,
  // REPLY
  /* syn    */ sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2,
  /* synack */ sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR,
  /* fin    */ sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV,
  /* ack    */ sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG,
  /* rst    */ sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL,
  /* none   */ sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV,
]);

/** kernel tcp_valid_flags: allowed FIN/SYN/RST/ACK/URG combinations (PSH, ECE, CWR are ignored). */
const TCP_VALID_FLAGS = new Uint8Array(64);
for (const f of [
  TCPHDR_SYN, TCPHDR_SYN | TCPHDR_URG, TCPHDR_SYN | TCPHDR_ACK, TCPHDR_RST, TCPHDR_RST | TCPHDR_ACK,
  TCPHDR_FIN | TCPHDR_ACK, TCPHDR_FIN | TCPHDR_ACK | TCPHDR_URG, TCPHDR_ACK, TCPHDR_ACK | TCPHDR_URG,
]) TCP_VALID_FLAGS[f] = 1;

/** kernel get_conntrack_index */
export function tcpIndex(flags: number): number {
  if (flags & 0x04 /* TCPHDR_RST */) return 4 /* TCP_RST_SET */;
  if (flags & 0x02 /* TCPHDR_SYN */) return flags & 0x10 /* TCPHDR_ACK */ ? 1 /* TCP_SYNACK_SET */ : 0 /* TCP_SYN_SET */;
  if (flags & 0x01 /* TCPHDR_FIN */) return 2 /* TCP_FIN_SET */;
  if (flags & 0x10 /* TCPHDR_ACK */) return 3 /* TCP_ACK_SET */;
  return 5 /* TCP_NONE_SET */;
}

// Results of tcpPacket
export const TCP_ACCEPT = 1;
/** -NF_ACCEPT: the packet is INVALID (no conntrack attached). */
export const TCP_INVALID = -1;
/** -NF_REPEAT: the entry was killed (SYN reopening a closed connection); look the packet up again. */
export const TCP_REPEAT = -2;

// tcpIndex and tcpPacket (per packet) write states, flag bits, results and ct.tcp's layout as literals with their names in comments
// (V8 loads a module binding on every use); checked once here against the definitions.
if (TCP_CONNTRACK_NONE !== 0 || TCP_CONNTRACK_SYN_SENT !== 1 || TCP_CONNTRACK_SYN_RECV !== 2 || TCP_CONNTRACK_ESTABLISHED !== 3 ||
    TCP_CONNTRACK_FIN_WAIT !== 4 || TCP_CONNTRACK_LAST_ACK !== 6 || TCP_CONNTRACK_TIME_WAIT !== 7 || TCP_CONNTRACK_CLOSE !== 8 ||
    TCP_CONNTRACK_SYN_SENT2 !== 9 || TCP_CONNTRACK_MAX !== 10 || TCP_CONNTRACK_IGNORE !== 11 || TCP_CONNTRACK_RETRANS !== 12 ||
    TCP_CONNTRACK_UNACK !== 13 || TCP_SYN_SET !== 0 || TCP_SYNACK_SET !== 1 || TCP_FIN_SET !== 2 || TCP_ACK_SET !== 3 ||
    TCP_RST_SET !== 4 || TCP_NONE_SET !== 5 || TCP_MAX_RETRANS !== 3 || TCPHDR_FIN !== 0x01 || TCPHDR_SYN !== 0x02 ||
    TCPHDR_RST !== 0x04 || TCPHDR_ACK !== 0x10 || (TCPHDR_ECE | TCPHDR_CWR | TCPHDR_PSH) !== 0xc8 ||
    IP_CT_TCP_FLAG_CLOSE_INIT !== 0x04 || IP_CT_TCP_FLAG_BE_LIBERAL !== 0x08 || IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED !== 0x10 ||
    IP_CT_TCP_FLAG_MAXACK_SET !== 0x20 || IP_CT_EXP_CHALLENGE_ACK !== 0x40 || IP_CT_TCP_SIMULTANEOUS_OPEN !== 0x04 ||
    IPS_ASSURED !== 4 || IPS_SEEN_REPLY !== 2 || TCP_ACCEPT !== 1 || TCP_INVALID !== -1 || TCP_REPEAT !== -2 || TCP_STRIDE !== 24 ||
    TCP_SIDE !== 8 || TD_END !== 0 || TD_MAXEND !== 1 || TD_MAXWIN !== 2 || TD_MAXACK !== 3 || TD_SCALE !== 4 || TD_FLAGS !== 5 ||
    TCP_LAST_INDEX !== 6 || TCP_LAST_DIR !== 7 || TCP_RETRANS !== 14 || TCP_LAST_FLAGS !== 15 || TCP_LAST_SEQ !== 16 ||
    TCP_LAST_END !== 18 || TCP_LAST_WIN !== 19 || TCP_LAST_WSCALE !== 20 || TCP_TIMEOUTS[TCP_CONNTRACK_ESTABLISHED] !== 432000 ||
    TCP_TIMEOUTS[TCP_CONNTRACK_RETRANS] !== 300 || TCP_TIMEOUTS[TCP_CONNTRACK_UNACK] !== 300) {
  throw new Error("netfilter/conntrack-tcp.ts: literal states or flags out of step with their definitions");
}

/**
 * TCP_VALID_FLAGS as two 32-bit masks (bit f of VALID_LO for f < 32, bit f - 32 of VALID_HI above), written as
 * literals in tcpError: a bit test instead of a typed array load per packet. Checked here against the table.
 */
const VALID_LO = 0x170014;
const VALID_HI = 0x30004;
for (let f = 0; f < 64; f++) {
  if (TCP_VALID_FLAGS[f] !== (((f < 32 ? VALID_LO >>> f : VALID_HI >>> (f - 32)) & 1))) {
    throw new Error("netfilter/conntrack-tcp.ts: tcpError's valid-flag masks out of step with TCP_VALID_FLAGS");
  }
}

/** kernel tcp_error: truncated header or a flag combination no TCP sends. (Checksums are not verified here.) */
export function tcpError(t: TupleScratch): boolean {
  const l4len = t.l4len;
  const doff = t.doff;
  if (l4len < 20 || doff < 20 || l4len < doff) return true;
  const f = t.tcpFlags & 0x37; // ~(ECE | CWR | PSH) & 0x3f
  // TCP_VALID_FLAGS[f] from its masks (VALID_LO, VALID_HI): JavaScript shifts count mod 32.
  return (((f < 32 ? 0x170014 /* VALID_LO */ : 0x30004 /* VALID_HI */) >>> f) & 1) === 0;
}

/** kernel tcp_new. Returns false when the first packet cannot start a connection. */
export function tcpNew(ct: ConntrackTable, i: number, t: TupleScratch, loose: boolean): boolean {
  const ns = TCP_CONNTRACKS[tcpIndex(t.tcpFlags) * 10]!; // [ORIGINAL][index][NONE]
  if (ns >= TCP_CONNTRACK_MAX) return false;
  const e = i * TCP_STRIDE;
  const tcp = ct.tcp;
  const end = segEnd(t);
  if (ns === TCP_CONNTRACK_SYN_SENT) {
    initFromSyn(ct, e, t, end);
  } else {
    if (!loose) return false; // nf_conntrack_tcp_loose=0: no mid-stream pick-up
    // In the middle of a connection: its history is lost, take what the segment says; assume SACK and be liberal.
    tcp[e + TD_END] = end;
    tcp[e + TD_MAXWIN] = t.win === 0 ? 1 : t.win;
    tcp[e + TD_MAXEND] = (end + tcp[e + TD_MAXWIN]!) >>> 0;
    tcp[e + TD_FLAGS] = IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL;
    tcp[e + TCP_SIDE + TD_FLAGS] = IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL;
  }
  ct.l4state[i] = TCP_CONNTRACK_NONE;
  tcp[e + TCP_LAST_INDEX] = TCP_NONE_SET;
  return true;
}

/**
 * tcpPacket's common case, written straight: an ACK (no SYN, FIN or RST: TCP_ACK_SET) on an ESTABLISHED connection
 * stays ESTABLISHED in both directions (tcp_conntracks[dir][TCP_ACK_SET][sES] = sES: not IGNORE, no special case
 * of the switch, no FIN_WAIT), so what is left is the window check, the last-packet annotations, the timeout
 * choice and ASSURED. Same steps and order as the general path below.
 */
function tcpEstablishedAck(ct: ConntrackTable, i: number, dir: number, t: TupleScratch): number {
  if (!tcpInWindow(ct, i, dir, 3 /* TCP_ACK_SET */, 3 /* TCP_CONNTRACK_ESTABLISHED */, t)) return -1 /* TCP_INVALID */;
  const tcp = ct.tcp;
  const e = i * 24; // TCP_STRIDE
  tcp[e + 6 /* TCP_LAST_INDEX */] = 3 /* TCP_ACK_SET */;
  tcp[e + 7 /* TCP_LAST_DIR */] = dir;
  // The timeouts as literals (ESTABLISHED 432000 s, RETRANS and UNACK 300 s, checked at load): ESTABLISHED is longer
  // than both, so each cap applies when its condition holds.
  let timeout = 432000; // TCP_TIMEOUTS[TCP_CONNTRACK_ESTABLISHED]
  if (tcp[e + 14 /* TCP_RETRANS */]! >= 3 /* TCP_MAX_RETRANS */) timeout = 300; // TCP_TIMEOUTS[TCP_CONNTRACK_RETRANS]
  else if (((tcp[e + 5 /* TD_FLAGS */]! | tcp[e + 13 /* TCP_SIDE + TD_FLAGS */]!) & 0x10 /* IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED */) !== 0) timeout = 300; // UNACK
  else if (tcp[e + 19 /* TCP_LAST_WIN */] === 0) timeout = 300; // RETRANS
  const status = ct.status[i]!;
  if (!(status & 2 /* IPS_SEEN_REPLY */)) {
    // Mid-stream pick-up without a reply yet: no 5-day ESTABLISHED timeout (no RST, not a SYN: the other cases do not apply).
    timeout = 300; // min(timeout, TCP_TIMEOUTS[TCP_CONNTRACK_UNACK]): every choice above is >= 300
  } else if (!(status & 4 /* IPS_ASSURED */)) ct.status[i] = status | 4 /* IPS_ASSURED */;
  ct.expires[i] = ct.now + timeout;
  return 1 /* TCP_ACCEPT */;
}

/**
 * kernel nf_conntrack_tcp_packet for entry `i`, packet direction `dir`. Updates state and expiry.
 * Returns TCP_ACCEPT, TCP_INVALID or TCP_REPEAT; an unreplied connection answered by RST is killed and accepted.
 */
export function tcpPacket(ct: ConntrackTable, i: number, dir: number, t: TupleScratch): number {
  const tcp = ct.tcp;
  const e = i * 24; // TCP_STRIDE
  const oldState = ct.l4state[i]!;
  if (oldState === 3 /* TCP_CONNTRACK_ESTABLISHED */ && (t.tcpFlags & 0x17) === 0x10 /* ACK; no SYN, FIN, RST */) return tcpEstablishedAck(ct, i, dir, t);
  const index = tcpIndex(t.tcpFlags);
  let newState = TCP_CONNTRACKS[(dir * 6 + index) * 10 + oldState]!;
  let old = oldState;
  let ignored = newState === 11 /* TCP_CONNTRACK_IGNORE */;
  let inWindowDone = false; // kernel: `goto in_window` skips the window check
  if (newState === 1 /* TCP_CONNTRACK_SYN_SENT */ && oldState >= 7 /* TCP_CONNTRACK_TIME_WAIT */) {
    // A SYN on a closed or aborted connection: delete the entry and look the packet up again.
    if (((tcp[e + 5 /* TD_FLAGS */]! | tcp[e + 13 /* TCP_SIDE + TD_FLAGS */]!) & 0x04 /* IP_CT_TCP_FLAG_CLOSE_INIT */) !== 0 ||
        (tcp[e + 7 /* TCP_LAST_DIR */] === dir && tcp[e + 6 /* TCP_LAST_INDEX */] === 4 /* TCP_RST_SET */)) {
      ct.kill(i);
      return -2 /* TCP_REPEAT */;
    }
    ignored = true; // kernel: falls through to the IGNORE case
  }
  if (ignored) {
    if (index === 1 /* TCP_SYNACK_SET */ && tcp[e + 6 /* TCP_LAST_INDEX */] === 0 /* TCP_SYN_SET */ && tcp[e + 7 /* TCP_LAST_DIR */] !== dir && t.ack === tcp[e + 18 /* TCP_LAST_END */]) {
      // b) a SYN/ACK answering a SYN we ignored: client and server are in sync, resync from it.
      old = 1 /* TCP_CONNTRACK_SYN_SENT */;
      newState = 2 /* TCP_CONNTRACK_SYN_RECV */;
      const l = e + tcp[e + 7 /* TCP_LAST_DIR */]! * 8; // TCP_SIDE
      tcp[l /* TD_END */] = tcp[e + 18 /* TCP_LAST_END */]!;
      tcp[l + 1 /* TD_MAXEND */] = tcp[e + 18 /* TCP_LAST_END */]!;
      tcp[l + 2 /* TD_MAXWIN */] = tcp[e + 19 /* TCP_LAST_WIN */] === 0 ? 1 : tcp[e + 19 /* TCP_LAST_WIN */]!;
      tcp[l + 4 /* TD_SCALE */] = tcp[e + 20 /* TCP_LAST_WSCALE */]!;
      tcp[e + 15 /* TCP_LAST_FLAGS */] &= ~0x40 /* IP_CT_EXP_CHALLENGE_ACK */;
      tcp[l + 5 /* TD_FLAGS */] = tcp[e + 15 /* TCP_LAST_FLAGS */]!;
      const d = e + dir * 8; // TCP_SIDE; nf_ct_tcp_state_reset
      tcp[d] = tcp[d + 1] = tcp[d + 2] = tcp[d + 3] = tcp[d + 4] = 0; // TD_END .. TD_SCALE
      tcp[d + 5 /* TD_FLAGS */] &= 0x08 /* IP_CT_TCP_FLAG_BE_LIBERAL */;
      inWindowDone = false;
    } else {
      tcp[e + 6 /* TCP_LAST_INDEX */] = index;
      tcp[e + 7 /* TCP_LAST_DIR */] = dir;
      tcp[e + 16 /* TCP_LAST_SEQ */] = t.seq;
      tcp[e + 18 /* TCP_LAST_END */] = segEnd(t);
      tcp[e + 19 /* TCP_LAST_WIN */] = t.win;
      if (index === 0 /* TCP_SYN_SET */ && dir === 0) {
        // a) a SYN in ORIGINAL: annotate its options; a later SYN/ACK may prove client and server in sync.
        tcp[e + 15 /* TCP_LAST_FLAGS */] = tcpOptionsLast(ct, i, t) | (oldState === 6 /* TCP_CONNTRACK_LAST_ACK */ ? 0x40 /* IP_CT_EXP_CHALLENGE_ACK */ : 0);
      }
      return 1 /* TCP_ACCEPT */; // ignored: no state change, no timeout refresh
    }
  }
  switch (newState) {
    case 10 /* TCP_CONNTRACK_MAX */:
      return -1 /* TCP_INVALID */;
    case 7 /* TCP_CONNTRACK_TIME_WAIT */:
      if (oldState === 6 /* TCP_CONNTRACK_LAST_ACK */ && index === 3 /* TCP_ACK_SET */ && tcp[e + 7 /* TCP_LAST_DIR */] !== dir &&
          tcp[e + 6 /* TCP_LAST_INDEX */] === 0 /* TCP_SYN_SET */ && (tcp[e + 15 /* TCP_LAST_FLAGS */]! & 0x40 /* IP_CT_EXP_CHALLENGE_ACK */)) {
        tcp[e + 15 /* TCP_LAST_FLAGS */] &= ~0x40 /* IP_CT_EXP_CHALLENGE_ACK */; // RFC 5961 challenge ACK: not the last ACK
        return 1 /* TCP_ACCEPT */;
      }
      break;
    case 9 /* TCP_CONNTRACK_SYN_SENT2 */:
      tcp[e + 15 /* TCP_LAST_FLAGS */] |= 0x04 /* IP_CT_TCP_SIMULTANEOUS_OPEN */;
      break;
    case 2 /* TCP_CONNTRACK_SYN_RECV */:
      if (dir === 1 && index === 3 /* TCP_ACK_SET */ && (tcp[e + 15 /* TCP_LAST_FLAGS */]! & 0x04 /* IP_CT_TCP_SIMULTANEOUS_OPEN */)) newState = 3 /* TCP_CONNTRACK_ESTABLISHED */;
      break;
    case 8 /* TCP_CONNTRACK_CLOSE */: {
      if (index !== 4 /* TCP_RST_SET */) break;
      // Closing already: the tuple may have been reused, skip the checks.
      if (oldState >= 4 /* TCP_CONNTRACK_FIN_WAIT */ && oldState <= 8 /* TCP_CONNTRACK_CLOSE */) {
        inWindowDone = true;
        break;
      }
      const peer = e + (dir ^ 1) * 8; // TCP_SIDE
      const established = oldState === 3 /* TCP_CONNTRACK_ESTABLISHED */ && (ct.status[i]! & 4 /* IPS_ASSURED */) !== 0;
      let done = false; // kernel: `break` out of the switch
      if (tcp[peer + 5 /* TD_FLAGS */]! & 0x20 /* IP_CT_TCP_FLAG_MAXACK_SET */ && tcp[e + 6 /* TCP_LAST_INDEX */] !== 0 /* TCP_SYN_SET */) {
        const seq = t.seq;
        if (seq === 0 && !established) done = true; // likely the answer to a SYN we let through
        else {
          if (before(seq, tcp[peer + 3 /* TD_MAXACK */]!)) return -1 /* TCP_INVALID */; // "invalid rst"
          if (!established || seq === tcp[peer + 3 /* TD_MAXACK */]) done = true;
          else if (tcp[e + 6 /* TCP_LAST_INDEX */] === 3 /* TCP_ACK_SET */ && tcp[e + 7 /* TCP_LAST_DIR */] === dir && seq === tcp[e + 18 /* TCP_LAST_END */]) done = true; // RST train
          else newState = oldState; // RST seq not exact: keep the state, a challenge ACK may follow
        }
      }
      if (!done && ((ct.status[i]! & 2 /* IPS_SEEN_REPLY */ && tcp[e + 6 /* TCP_LAST_INDEX */] === 0 /* TCP_SYN_SET */ && tcp[e + 7 /* TCP_LAST_DIR */] !== dir) ||
           (!(ct.status[i]! & 4 /* IPS_ASSURED */) && tcp[e + 6 /* TCP_LAST_INDEX */] === 3 /* TCP_ACK_SET */)) && t.ack === tcp[e + 18 /* TCP_LAST_END */]) {
        inWindowDone = true; // RST to a SYN or ACK we let through: delete without the window check
      }
      break;
    }
    default:
      break;
  }
  if (!inWindowDone && !tcpInWindow(ct, i, dir, index, oldState, t)) return -1 /* TCP_INVALID */;
  tcp[e + 6 /* TCP_LAST_INDEX */] = index;
  tcp[e + 7 /* TCP_LAST_DIR */] = dir;
  ct.l4state[i] = newState;
  if (old !== newState && newState === 4 /* TCP_CONNTRACK_FIN_WAIT */) tcp[e + dir * 8 + 5 /* TD_FLAGS */] |= 0x04 /* IP_CT_TCP_FLAG_CLOSE_INIT */;

  let timeout: number;
  const unack = ((tcp[e + 5 /* TD_FLAGS */]! | tcp[e + 13 /* TCP_SIDE + TD_FLAGS */]!) & 0x10 /* IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED */) !== 0;
  if (tcp[e + 14 /* TCP_RETRANS */]! >= 3 /* TCP_MAX_RETRANS */ && TCP_TIMEOUTS[newState]! > TCP_TIMEOUTS[12 /* TCP_CONNTRACK_RETRANS */]!) timeout = TCP_TIMEOUTS[12 /* TCP_CONNTRACK_RETRANS */]!;
  else if (index === 4 /* TCP_RST_SET */) timeout = TCP_TIMEOUTS[8 /* TCP_CONNTRACK_CLOSE */]!;
  else if (unack && TCP_TIMEOUTS[newState]! > TCP_TIMEOUTS[13 /* TCP_CONNTRACK_UNACK */]!) timeout = TCP_TIMEOUTS[13 /* TCP_CONNTRACK_UNACK */]!;
  else if (tcp[e + 19 /* TCP_LAST_WIN */] === 0 && TCP_TIMEOUTS[newState]! > TCP_TIMEOUTS[12 /* TCP_CONNTRACK_RETRANS */]!) timeout = TCP_TIMEOUTS[12 /* TCP_CONNTRACK_RETRANS */]!;
  else timeout = TCP_TIMEOUTS[newState]!;

  const status = ct.status[i]!;
  if (!(status & 2 /* IPS_SEEN_REPLY */)) {
    // Only reply so far is a RST: not a connection worth keeping (kernel kills it at once).
    if (t.tcpFlags & 0x04 /* TCPHDR_RST */) {
      ct.kill(i);
      return 1 /* TCP_ACCEPT */;
    }
    // A retransmitted SYN does not renew the timeout (port reuse must not keep the entry alive forever).
    if (index === 0 /* TCP_SYN_SET */ && old === 1 /* TCP_CONNTRACK_SYN_SENT */) return 1 /* TCP_ACCEPT */;
    // Mid-stream pick-up without a reply yet: no 5-day ESTABLISHED timeout.
    if (newState === 3 /* TCP_CONNTRACK_ESTABLISHED */ && timeout > TCP_TIMEOUTS[13 /* TCP_CONNTRACK_UNACK */]!) timeout = TCP_TIMEOUTS[13 /* TCP_CONNTRACK_UNACK */]!;
  } else if (!(status & 4 /* IPS_ASSURED */) && (old === 2 /* TCP_CONNTRACK_SYN_RECV */ || old === 3 /* TCP_CONNTRACK_ESTABLISHED */) && newState === 3 /* TCP_CONNTRACK_ESTABLISHED */) {
    ct.status[i] = status | 4 /* IPS_ASSURED */;
  }
  ct.expires[i] = ct.now + timeout;
  return 1 /* TCP_ACCEPT */;
}
