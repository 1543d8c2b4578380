// include/uapi/asm-generic/errno-base.h: helpers return 0 or a negative errno, as in the kernel.
export const ENOENT: i32 = 2;
export const E2BIG: i32 = 7;
export const EAGAIN: i32 = 11;
export const ENOMEM: i32 = 12;
export const EFAULT: i32 = 14;
export const EBUSY: i32 = 16;
export const EEXIST: i32 = 17;
export const EINVAL: i32 = 22;
export const ENOSPC: i32 = 28;
export const ERANGE: i32 = 34;
export const ENOTSUPP: i32 = 524;
