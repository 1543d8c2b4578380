// kube-proxy chain-name vectors: upstream proxier_test.go expectations and the well-known chains every real
// cluster has (kube-dns, kubernetes).
import { describe, expect, it } from "vitest";
import { extChain, fwChain, hash16, sepChain, servicePortNameString, svcChain, svlChain } from "../../src/k8s/kube-proxy/chain-names.js";

describe("chain names: prefix + base32(sha256(...))[:16]", () => {
  const cases: [string, string][] = [
    [svcChain("ns1/svc1:p80", "tcp"), "KUBE-SVC-XPGD46QRK7WJZT7O"],
    [svcChain("ns2/svc2:p80", "tcp"), "KUBE-SVC-GNZBNJ2PO5MGZ6GT"],
    [extChain("ns2/svc2:p80", "tcp"), "KUBE-EXT-GNZBNJ2PO5MGZ6GT"],
    [svlChain("ns2/svc2:p80", "tcp"), "KUBE-SVL-GNZBNJ2PO5MGZ6GT"],
    [svcChain("ns3/svc3:p80", "tcp"), "KUBE-SVC-X27LE4BHSL4DOUIK"],
    [svcChain("ns4/svc4:p80", "tcp"), "KUBE-SVC-4SW47YFZTEDKD3PK"],
    [fwChain("ns5/svc5:p80", "tcp"), "KUBE-FW-NUKIZ6OKUXPJNT4C"],
    [sepChain("ns1/svc1:p80", "tcp", "10.180.0.1:80"), "KUBE-SEP-SXIVWICOYRO3J4NJ"],
    [sepChain("ns2/svc2:p80", "tcp", "10.180.0.2:80"), "KUBE-SEP-RS4RBKLTHTF2IUXJ"],
    [sepChain("ns3/svc3:p80", "tcp", "10.180.0.3:80"), "KUBE-SEP-OYPFS5VJICHGATKP"],
    [sepChain("ns4/svc4:p80", "tcp", "10.180.0.4:80"), "KUBE-SEP-UKSFD7AGPMPPLUHC"],
    [sepChain("ns4/svc4:p80", "tcp", "10.180.0.5:80"), "KUBE-SEP-C6EBXVWJJZMIWKLZ"],
    [sepChain("ns5/svc5:p80", "tcp", "10.180.0.3:80"), "KUBE-SEP-I77PXRDZVX7PMWMN"],
    [svcChain("kube-system/kube-dns:dns", "udp"), "KUBE-SVC-TCOU7JCQXEZGVUNU"],
    [svcChain("kube-system/kube-dns:dns-tcp", "tcp"), "KUBE-SVC-ERIFXISQEP7F7OF4"],
    [svcChain("kube-system/kube-dns:metrics", "tcp"), "KUBE-SVC-JD5MR3NA4I4DYORP"],
    [svcChain("default/kubernetes:https", "tcp"), "KUBE-SVC-NPX46M4PTMTKRN6Y"],
  ];
  for (const [got, want] of cases) it(want, () => expect(got).toBe(want));

  it("ServicePortName.String() omits an empty port name", () => {
    expect(servicePortNameString("ns", "svc", "")).toBe("ns/svc");
    expect(servicePortNameString("ns", "svc", "http")).toBe("ns/svc:http");
  });

  it("hash16 is 16 characters of the RFC 4648 alphabet and chain names fit iptables' 28", () => {
    for (let i = 0; i < 200; i++) {
      const h = hash16(`ns${i}/svc:p${i}tcp`);
      expect(h).toMatch(/^[A-Z2-7]{16}$/);
      expect(sepChain(`ns${i}/a-very-long-service-name:port`, "tcp", `10.0.${i}.1:8080`).length).toBeLessThanOrEqual(28);
    }
  });
});
