#pragma once
// The tests read what needle writes (access-log lines, /pools, alert batches) with needle's own
// JSON reader (server/json_reader.h: RFC 8259, never throwing, nesting bounded); a parse error
// is nullopt, and the tests then fail with the raw text.
#include "server/json_reader.h"

namespace needle::test {
using server::Json;
using server::JsonReader;
}  // namespace needle::test
