// One error class for the kernel model: setup mistakes the kernel would refuse (a gateway not on-link, a
// duplicate bind), with `where` naming the namespace and device or command, and the errno the kernel returns.

export class NetError extends Error {
  constructor(
    message: string,
    /** `node1/eth0`, `node1: ip route add 10.0.0.0/8` */
    readonly where: string,
    /** errno the kernel would return (EADDRINUSE, EINVAL, ENETUNREACH, ...), 0 if none applies. */
    readonly errno = 0,
  ) {
    super(message);
    this.name = "NetError";
  }
}
