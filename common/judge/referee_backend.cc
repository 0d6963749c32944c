#include "common/judge/referee_backend.h"

// The interface has no code of its own; this unit anchors its vtable.
