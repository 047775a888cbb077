#include "net/socket_io.h"

// The primitives are inline (socket_io.h); this unit checks that the header stands alone.
