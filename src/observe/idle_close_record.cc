#include "observe/idle_close_record.h"

namespace needle::observe {

std::string_view idle_close_outcome_name(IdleCloseOutcome outcome) {
  switch (outcome) {
    case IdleCloseOutcome::client_closed:
      return "client_closed";
    case IdleCloseOutcome::quiet:
      return "quiet";
    case IdleCloseOutcome::race_request:
      return "request";
    case IdleCloseOutcome::race_reset:
      return "reset";
    case IdleCloseOutcome::unwatched:
      return "unwatched";
    case IdleCloseOutcome::count_:
      break;
  }
  return "unknown";
}

}  // namespace needle::observe
