#pragma once
// The certificates are shared with the integration tests (tests/support/test_pki.h).
#include "support/test_pki.h"
