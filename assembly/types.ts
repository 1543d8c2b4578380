// Type names for struct fields that tell the host how to show and parse them (tcbox build records each
// @unmanaged class's fields with these names, like BTF): be16/be32 hold network-order values, ipv4 an address
// in network order. To AssemblyScript they are plain integers.
export type be16 = u16;
export type be32 = u32;
export type ipv4 = u32;
