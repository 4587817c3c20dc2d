package volumes

import "syscall"

// oNoATime keeps a forensic source's access time as it was, where the kernel lets us.
const oNoATime = syscall.O_NOATIME
