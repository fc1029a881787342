#include "core/error.hpp"

namespace xmodal {

std::string Error::one_line() const {
  std::string msg = "xmodal: ";
  if (!subject_.empty()) msg += subject_ + ": ";
  msg += what();
  for (char& c : msg)
    if (c == '\n' || c == '\r') c = ' ';
  return msg;
}

}  // namespace xmodal
