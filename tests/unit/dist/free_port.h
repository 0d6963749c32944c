// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it), for rendezvous.
#pragma once

namespace r1r::dist::testing {
int FreeLoopbackPort();
}
